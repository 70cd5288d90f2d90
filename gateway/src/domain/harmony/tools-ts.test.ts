/**
 * Rendering tool schemas is linear in the size of what it renders (#20 item 8): nested types are written
 * once into one buffer, never rendered into a string their parent copies or scans again. A 1,000-level
 * chain of nullable objects (far beyond what requests may send: 32 levels) renders its ~2 MB of text well
 * within the bound; the scan-per-level renderer took seconds here. The exact text is pinned by the
 * conformance cases in render.test.ts.
 */
import { describe, expect, it } from "vitest";
import { schemaToTs } from "./tools-ts.ts";
import type { JsonSchema } from "./types.ts";

function chain(levels: number): JsonSchema {
  let schema: JsonSchema = { type: "string", nullable: true };
  for (let i = 0; i < levels; i++) schema = { type: "object", nullable: true, description: `level ${i}`, properties: { a: schema } };
  return schema;
}

describe("schemaToTs", () => {
  it("renders nullable nesting exactly", () => {
    expect(schemaToTs(chain(1), "")).toBe("// level 0\n{\na?: string | null,\n}");
  });

  it("renders a 1,000-level schema in time linear in its text", () => {
    const schema = chain(1_000);
    const t0 = performance.now();
    const text = schemaToTs(schema, "");
    const ms = performance.now() - t0;
    // Each level adds its indentation (4 spaces per level) to two lines: the text is ~2 MB.
    expect(text.length).toBeGreaterThan(1_000 * 1_000 * 4);
    expect(text.split("| null").length - 1).toBe(1);
    expect(ms).toBeLessThan(2_000);
  });
});
