/**
 * Pre-serialized JSON for the streaming hot path. A streamed chunk differs from the previous one only in
 * its delta text, so its JSON is built once with a placeholder where the text goes and then joined with
 * each text's JSON string: the same bytes JSON.stringify gives for the object with the text in place,
 * without building and walking that object for every token.
 */

/** The placeholder string: put it in the shape wherever the text goes. */
export const TEXT = "\u0000expertmesh-text\u0000";
const PLACEHOLDER_JSON = JSON.stringify(TEXT);

/** Text around the JSON in what a template gives: an SSE event's `data: ` line. */
export interface Frame {
  prefix: string;
  suffix: string;
}

export const SSE_EVENT: Frame = { prefix: "data: ", suffix: "\n\n" };
const BARE: Frame = { prefix: "", suffix: "" };

/**
 * `shape` serialized once; the returned function gives the JSON with every placeholder replaced by
 * `text`, inside `frame` (its prefix and suffix are part of the template: no further concatenation per
 * call). Null when the placeholder does not appear, or when some other string of the shape could be
 * mistaken for it (then the caller serializes the object itself).
 */
export function jsonTemplate(shape: unknown, placeholders: number, frame: Frame = BARE): ((text: string) => string) | null {
  const parts = JSON.stringify(shape).split(PLACEHOLDER_JSON);
  if (parts.length !== placeholders + 1) return null;
  parts[0] = frame.prefix + parts[0];
  parts[parts.length - 1] += frame.suffix;
  if (parts.length === 2) {
    const [before, after] = parts as [string, string];
    return (text) => before + JSON.stringify(text) + after;
  }
  return (text) => parts.join(JSON.stringify(text));
}
