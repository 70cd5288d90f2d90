/**
 * Loads @mlc-ai/web-xgrammar (xgrammar compiled to WebAssembly) once per process. The package is a UMD
 * bundle marked as an ES module: its Node path calls `require` and reads `__filename`/`__dirname`, which
 * an ES module does not have, and it registers itself on `globalThis.xgrammar` rather than exporting.
 * So those three globals are provided before the import, and the API is read from the global after.
 * Nothing else in the repository touches the package directly.
 */
import { createRequire } from "node:module";
import path from "node:path";
import type * as XGrammarTypes from "@mlc-ai/web-xgrammar";

export type XGrammar = typeof XGrammarTypes;
export type { CompiledGrammar, GrammarCompiler, GrammarMatcher, TokenizerInfo } from "@mlc-ai/web-xgrammar";

let loading: Promise<XGrammar> | undefined;

async function load(): Promise<XGrammar> {
  const require = createRequire(import.meta.url);
  const entry = require.resolve("@mlc-ai/web-xgrammar");
  const g = globalThis as Record<string, unknown>;
  g.require ??= require;
  g.__filename ??= entry;
  g.__dirname ??= path.dirname(entry);
  await import("@mlc-ai/web-xgrammar");
  const api = g.xgrammar as XGrammar | undefined;
  if (!api?.GrammarCompiler) throw new Error(`@mlc-ai/web-xgrammar loaded from ${entry} but did not register globalThis.xgrammar`);
  return api;
}

/** The xgrammar API; the first call loads the WebAssembly module. */
export function loadXGrammar(): Promise<XGrammar> {
  loading ??= load();
  return loading;
}
