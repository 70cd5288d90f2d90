/**
 * bench/peer-report against output captured from real runs (bench/fixtures/, see its README): llama-bench
 * -o json and llama-batched-bench --output-format jsonl on the bf16-dense gpt-oss-20b GGUF, and
 * bench/engine --json on the tiny shape. Each parser must find every figure the program printed, and
 * agree with the program's own arithmetic (llama-bench's mean of its samples, batched-bench's pl·tg/t_tg).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  comparisonTable,
  decodeMetric,
  parseBatchedBench,
  parseEngine,
  parseLlamaBench,
  prefillMetric,
  type Rates,
} from "./peer-report.ts";
import { median } from "./stats.ts";

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8");

describe("parseLlamaBench", () => {
  const text = fixture("llama-bench-20b.json.txt");

  it("maps ppN to prefill and tgN to batch-1 decode, at llama-bench's own average of its samples", () => {
    const { rates, info } = parseLlamaBench(text);
    expect([...rates.keys()].sort()).toEqual([decodeMetric(1), prefillMetric(1024), prefillMetric(64)].sort());
    for (const t of JSON.parse(text) as Array<{ n_prompt: number; n_gen: number; avg_ts: number; samples_ts: number[] }>) {
      const key = t.n_gen === 0 ? prefillMetric(t.n_prompt) : decodeMetric(1);
      expect(rates.get(key)).toBe(t.avg_ts);
      expect(rates.get(key)).toBeCloseTo(t.samples_ts.reduce((a, b) => a + b, 0) / t.samples_ts.length, 3);
    }
    expect(info.buildCommit).toMatch(/^[0-9a-f]{7,}$/);
    expect(info.threads).toBe(2);
    expect(info.modelType).toMatch(/gpt-oss/);
  });

  it("refuses a combined pp+tg test, a missing rate and output that is not -o json", () => {
    const tests = JSON.parse(text) as Array<Record<string, unknown>>;
    const combined = tests.map((t) => ({ ...t, n_gen: 8 }));
    expect(() => parseLlamaBench(JSON.stringify(combined))).toThrow(/neither a pp nor a tg test/);
    const noRate = tests.map(({ avg_ts: _, ...t }) => t);
    expect(() => parseLlamaBench(JSON.stringify(noRate))).toThrow(/field 'avg_ts' is not a number/);
    expect(() => parseLlamaBench("| model | size |")).toThrow(/no JSON array/);
  });
});

describe("parseBatchedBench", () => {
  const text = fixture("llama-batched-bench-20b.jsonl.txt");

  it("reads S_TG per sequence count from the JSONL lines and skips the log lines around them", () => {
    const rates = parseBatchedBench(text);
    const lines = text
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { pl: number; tg: number; t_tg: number; speed_tg: number });
    expect([...rates.keys()]).toEqual(lines.map((l) => decodeMetric(l.pl)));
    for (const l of lines) expect(rates.get(decodeMetric(l.pl))).toBeCloseTo((l.pl * l.tg) / l.t_tg, 1);
  });

  it("refuses output without JSONL lines (the markdown table)", () => {
    expect(() => parseBatchedBench("|    PP |     TG |    B |\n")).toThrow(/no JSONL result lines/);
  });
});

describe("parseEngine", () => {
  const text = fixture("engine-tiny-json.txt");

  it("reads every decode batch and prompt length that the table printed", () => {
    const { rates } = parseEngine(text);
    for (const [key, value] of rates) {
      const row = text.split("\n").find((l) => l.startsWith(`| ${key} `));
      expect(row, key).toBeDefined();
      expect(Number(row?.split("|")[2])).toBeCloseTo(value, 0);
    }
    expect([...rates.keys()]).toEqual([decodeMetric(1), decodeMetric(4), decodeMetric(16), prefillMetric(64), prefillMetric(1024)]);
  });

  it("reads the engine's account of its own run: cores used in the batch-1 decode, the bandwidth probe's verdict", () => {
    const { health } = parseEngine(text);
    const row = (name: string) => text.split("\n").find((l) => l.startsWith(`| ${name}`)) ?? "";
    expect(row("CPU cores this process used during batch-1 decode")).toContain(`${health.decodeCores?.toFixed(2)} of `);
    expect(row("CPU read bandwidth for the roofline")).toContain(health.bandwidthNote);
  });

  it("refuses output without the --json line", () => {
    expect(() => parseEngine(text.split("\n{")[0] as string)).toThrow(/no JSON line/);
  });
});

describe("median and the comparison table", () => {
  it("median: the middle value, the mean of the two middle ones, NaN for none", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
  });

  it("one row per metric, each round's figure, the median of the paired ratios; a missing figure is a dash", () => {
    const peer = parseLlamaBench(fixture("llama-bench-20b.json.txt")).rates;
    const ours: Rates = new Map([...peer].map(([k, v]) => [k, v * 1.5]));
    ours.delete(prefillMetric(1024));
    const slower: Rates = new Map([...peer].map(([k, v]) => [k, v * 0.5]));
    const table = comparisonTable(
      [decodeMetric(1), prefillMetric(1024)],
      [
        { peer, ours },
        { peer, ours },
        { peer, ours: slower },
      ],
    );
    const lines = table.split("\n");
    expect(lines[0]).toMatch(/^\| metric +\| llama\.cpp runs +\| ExpertMesh runs +\| median ratio \(ExpertMesh \/ llama\.cpp\) \|$/);
    expect(lines[1]).toMatch(/^\|-+\|-+\|-+\|-+\|$/);
    expect(lines[2]).toMatch(/^\| decode tok\/s, batch 1 +\| [\d.]+, [\d.]+, [\d.]+ +\| [\d.]+, [\d.]+, [\d.]+ +\| 1\.50× +\|$/);
    expect(lines[3]).toMatch(/\| —, —, [\d.]+ +\| 0\.50× +\|$/);
    expect(lines).toHaveLength(4);
  });
});
