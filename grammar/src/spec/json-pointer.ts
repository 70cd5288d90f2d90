/** Local JSON Pointers ("#/a/b~1c") into a schema: written from a path, and resolved. */

/** The pointer to `path` (keys and array indices from the root). */
export function pointer(path: readonly string[]): string {
  return `#/${path.map((p) => p.replaceAll("~", "~0").replaceAll("/", "~1")).join("/")}`;
}

/** A local JSON Pointer ("#" or "#/…") resolved in `root`; undefined when it points nowhere (or elsewhere). */
export function resolvePointer(root: unknown, ref: string): unknown {
  if (ref === "#") return root;
  if (!ref.startsWith("#/")) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(2).split("/")) {
    const key = decodeURIComponent(raw).replaceAll("~1", "/").replaceAll("~0", "~");
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}
