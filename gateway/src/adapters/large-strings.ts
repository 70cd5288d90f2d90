/**
 * Sending a job with megabyte strings to a thread in one postMessage costs the event loop a copy of all
 * of it at once (tens of milliseconds on a fresh allocation: a stall of every stream, R23). The job goes
 * as a skeleton with its large strings emptied, and the strings follow in slices, a tick apart; the
 * thread puts them back at their paths.
 */

export type Path = ReadonlyArray<string | number>;

/** A large string taken out of a value: where it was, and its text. */
export interface LargeString {
  path: Path;
  text: string;
}

const isPlainObject = (v: unknown): v is object =>
  typeof v === "object" && v !== null && [Object.prototype, null].includes(Object.getPrototypeOf(v));

/**
 * A copy of `value`'s plain objects and arrays (anything else, e.g. a SharedArrayBuffer, is kept as is)
 * with each string of `min` or more characters replaced by "", and those strings.
 */
export function takeLargeStrings<T>(value: T, min: number): { skeleton: T; large: LargeString[] } {
  const large: LargeString[] = [];
  const copy = (v: unknown, path: Array<string | number>): unknown => {
    if (typeof v === "string") {
      if (v.length < min) return v;
      large.push({ path: [...path], text: v });
      return "";
    }
    if (Array.isArray(v)) return v.map((x, i) => copy(x, [...path, i]));
    if (isPlainObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x, [...path, k])]));
    return v;
  };
  return { skeleton: copy(value, []) as T, large };
}

/** Puts `text` back at `path` in a skeleton made by takeLargeStrings. */
export function putLargeString(skeleton: unknown, path: Path, text: string): void {
  let at = skeleton as Record<string | number, unknown>;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
  const last = path.at(-1);
  if (last !== undefined) at[last] = text;
}

/** The slices of the large strings, in order: `size` characters each (a surrogate pair may be cut; joined back whole). */
export function* slices(large: readonly LargeString[], size: number): Generator<string> {
  for (const { text } of large) for (let i = 0; i < text.length; i += size) yield text.slice(i, i + size);
}
