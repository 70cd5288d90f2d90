/** The compiler's cache and compile-time bound, against real xgrammar at the full vocabulary. */
import { AppError } from "@expertmesh/common";
import { describe, expect, it } from "vitest";
import type { ConstraintSpec } from "../spec/constraint-spec.ts";
import type { JsonSchema } from "../spec/schema-support.ts";
import { ConstraintCompiler } from "./compiler.ts";

const spec = (name: string): ConstraintSpec => ({
  version: 1,
  guard: true,
  tools: [{ name, strict: false, parameters: { type: "object" } }],
  toolChoice: { kind: "auto" },
  finalFormat: { kind: "text" },
});

describe("ConstraintCompiler", () => {
  it("compiles nothing for an unconstrained spec", async () => {
    const compiler = await ConstraintCompiler.create();
    expect(await compiler.compile({ ...spec("f"), guard: false })).toBeNull();
  });

  it("keeps at most cacheEntries grammars and refuses matchers for evicted ones", async () => {
    const compiler = await ConstraintCompiler.create({ cacheEntries: 1, compileLimitMs: 60_000 });
    const a = await compiler.compile(spec("a"));
    const b = await compiler.compile(spec("b"));
    expect(compiler.stats).toEqual({ hits: 0, misses: 2, entries: 1 });
    await expect(compiler.matcher(a as NonNullable<typeof a>)).rejects.toThrow(/left the cache; compile it again/);
    const again = await compiler.compile(spec("a"));
    expect(again?.cached).toBe(false);
    (await compiler.matcher(again as NonNullable<typeof again>)).dispose();
    expect(b?.key).not.toBe(a?.key);
  });

  it("refuses schemas nested past the engine's stack before compiling, and keeps compiling after", async () => {
    // Each of these aborted the WebAssembly module before the limits (schema-limits.ts); every later
    // compile in the process then failed, the plain guard's included.
    const compiler = await ConstraintCompiler.create();
    let deep: object = { type: "string" };
    for (let i = 0; i < 60; i++) deep = { type: "object", properties: { a: deep }, required: ["a"], additionalProperties: false };
    const groups = { type: "object", properties: { s: { type: "string", pattern: `${"(a|".repeat(300)}b${")".repeat(300)}` } } };
    for (const parameters of [deep, groups]) {
      const strict: ConstraintSpec = { ...spec("f"), tools: [{ name: "f", strict: true, parameters: parameters as JsonSchema }] };
      await expect(compiler.compile(strict)).rejects.toMatchObject({ code: "schema_too_complex" });
    }
    expect(await compiler.compile(spec("after"))).not.toBeNull();
  });

  it("refuses a compile over the limit, and remembers the refusal", async () => {
    const compiler = await ConstraintCompiler.create({ cacheEntries: 8, compileLimitMs: 0 });
    const first = await compiler.compile(spec("slow")).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(AppError);
    expect((first as AppError).code).toBe("compile_too_slow");
    expect((first as AppError).message).toMatch(/over the limit of 0 ms/);
    await expect(compiler.compile(spec("slow"))).rejects.toBe(first);
    expect(compiler.stats).toEqual({ hits: 1, misses: 1, entries: 1 });
  });
});
