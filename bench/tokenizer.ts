#!/usr/bin/env node
/**
 * bench/tokenizer — the gateway's o200k tokenizer (gateway/src/domain/harmony: our byte-pair encoder)
 * beside js-tiktoken on the same inputs: English prose (every README.md and LICENSE under node_modules,
 * ≥ 1 MB), code (this repository's TypeScript), and the adversarial inputs of R23: one repeated
 * character, spaces, "=", random code points, random bytes decoded as UTF-8, CJK. js-tiktoken is
 * quadratic per merge on a long piece, so its runs are measured on a short prefix (the row says how
 * long). Prints MB/s and tokens/s, and our worst-input throughput over our prose throughput (R23 asks
 * ≥ 1/3).
 *
 *   node bench/tokenizer.ts [--mb 1] [--reference-cap 20000]
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { Tiktoken } from "js-tiktoken/lite";
import o200kBase from "js-tiktoken/ranks/o200k_base";

const { values } = parseArgs({ options: { mb: { type: "string", default: "1" }, "reference-cap": { type: "string", default: "20000" } } });
const SIZE = Math.round(Number(values.mb) * 1_000_000);
const REFERENCE_CAP = Number(values["reference-cap"]);
const root = fileURLToPath(new URL("..", import.meta.url));

/** Files whose names match `want` under `dir`, depth-first, until `limit` characters are collected. */
function collect(dir: string, want: RegExp, limit: number, skip: RegExp, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    if (out.join("").length >= limit) break;
    const path = join(dir, name);
    if (skip.test(path)) continue;
    const st = statSync(path, { throwIfNoEntry: false });
    if (st?.isDirectory()) collect(path, want, limit, skip, out);
    else if (st?.isFile() && want.test(name) && st.size < 1_000_000) out.push(readFileSync(path, "utf8"));
  }
  return out;
}

const fit = (s: string): string => (s.length >= SIZE ? s.slice(0, SIZE) : fit(s + s));
const rnd = (() => {
  let a = 12345;
  return () => {
    a = (Math.imul(a, 1103515245) + 12345) >>> 0;
    return a / 2 ** 32;
  };
})();
const randomText = () =>
  Array.from({ length: SIZE / 2 }, () => String.fromCodePoint(Math.floor(rnd() * 0xd7ff) + 1))
    .join("")
    .slice(0, SIZE);
/**
 * Random bytes read as UTF-8: mostly U+FFFD (three bytes each once encoded again, hence a third of SIZE),
 * with whatever valid sequences the bytes happen to make.
 */
const randomBytes = () => Buffer.from(Array.from({ length: SIZE / 3 }, () => Math.floor(rnd() * 256))).toString("utf8");
const inputs: Array<[string, string]> = [
  ["English prose (READMEs, licences)", fit(collect(join(root, "node_modules"), /^(README\.md|LICENSE)$/i, SIZE, /\.bin/).join("\n\n"))],
  ["code (this repo's TypeScript)", fit(collect(root, /\.ts$/, SIZE, /node_modules|\.tools|\.run|fixtures/).join("\n"))],
  ['one repeated character ("a")', "a".repeat(SIZE)],
  ["spaces", " ".repeat(SIZE)],
  ['"="', "=".repeat(SIZE)],
  ["random code points (BMP)", randomText()],
  ["random bytes decoded as UTF-8", randomBytes()],
  ["CJK", fit("中文日本語の文章と한국어 문장이 섞인 텍스트입니다。")],
];

const ours = new HarmonyTokenizer();
const reference = new Tiktoken({ ...o200kBase, special_tokens: {} });

interface Rate {
  mbps: number;
  tps: number;
}

/** One timed encode, as a rate. */
function once(encode: (s: string) => number[], text: string): Rate {
  const t0 = performance.now();
  const tokens = encode(text).length;
  const s = (performance.now() - t0) / 1000;
  return { mbps: Buffer.byteLength(text) / 1e6 / s, tps: tokens / s };
}

const faster = (a: Rate | undefined, b: Rate): Rate => (a && a.mbps >= b.mbps ? a : b);

/** The fastest of `runs` runs (a shared machine only slows runs down). */
function measure(encode: (s: string) => number[], text: string, runs: number): Rate {
  let best: Rate | undefined;
  for (let i = 0; i < runs; i++) best = faster(best, once(encode, text));
  return best as Rate;
}

// Texts over the encode cache's per-text limit: every run encodes.
const oursEncode = (s: string) => ours.encode(s);
const refEncode = (s: string) => reference.encode(s, [], []);
console.log(`\n| input | ours MB/s | ours tokens/s | js-tiktoken MB/s | js-tiktoken tokens/s | js-tiktoken measured on |`);
console.log("|---|---|---|---|---|---|");
// Ours: the fastest of ROUNDS runs per input, the inputs taken in turn, so that a slow phase of the
// machine lands on every input alike and the worst/prose ratio compares like with like.
const ROUNDS = 5;
const oursBest = new Map<string, Rate>();
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, text] of inputs) oursBest.set(name, faster(oursBest.get(name), once(oursEncode, text)));
}
const rates = new Map<string, number>();
for (const [name, text] of inputs) {
  const o = oursBest.get(name) as Rate;
  rates.set(name, o.mbps);
  const long = /repeated|spaces|"="/.test(name);
  const refText = long ? text.slice(0, REFERENCE_CAP) : text;
  // One run of a quadratic reference takes seconds: its fastest of three would say nothing more.
  const r = measure(refEncode, refText, long ? 1 : 3);
  const on = long ? `first ${REFERENCE_CAP.toLocaleString()} chars, one run (quadratic beyond)` : "the same input";
  console.log(
    `| ${name} | ${o.mbps.toFixed(2)} | ${Math.round(o.tps).toLocaleString()} | ${r.mbps.toFixed(2)} | ${Math.round(r.tps).toLocaleString()} | ${on} |`,
  );
}
const prose = rates.get(inputs[0]?.[0] ?? "") ?? Number.NaN;
const [worstName, worst] = [...rates].sort((a, b) => a[1] - b[1])[0] ?? ["", Number.NaN];
console.log(
  `\ninputs of ${(SIZE / 1e6).toFixed(1)} MB; ours, worst input (${worstName}) / prose: ${(worst / prose).toFixed(2)} (R23: ≥ 0.33)`,
);
