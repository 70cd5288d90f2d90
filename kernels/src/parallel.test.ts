/**
 * Expert parallelism on CPU ranks (real processes, Gloo over loopback): the communicator's collectives
 * and its watchdog, `expertmesh logits --world W` equal to W = 1 and to the reference on every golden
 * case whose head counts W divides, and each rank holding only its share of the experts.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { capabilities } from "./capabilities.ts";
import { Model } from "./model.ts";
import { compareLogits, type GoldenCase, goldenCases } from "./testing/golden.ts";

const run = promisify(execFile);
const cli = new URL("./cli/main.ts", import.meta.url).pathname;
const rankScript = new URL("./testing/comm-rank.ts", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "expertmesh-ep-"));

interface RankResult {
  ok: boolean;
  data?: number[];
  native?: boolean;
  status?: string;
  message?: string;
  ms?: number;
}

/** Starts `world` rank processes; resolves with each one's printed result (null for a stalled rank). */
async function ranks(world: number, modeOf: (r: number) => "sum" | "stall", timeoutMs = 10_000): Promise<Array<RankResult | null>> {
  const rendezvous = `file://${mkdtempSync(join(tmp, "rdzv-"))}`;
  return Promise.all(
    Array.from({ length: world }, (_, r) => {
      const child = spawn(process.execPath, [rankScript, String(r), String(world), rendezvous, modeOf(r), String(timeoutMs)], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout.on("data", (b: Buffer) => {
        out += b.toString();
        if (modeOf(r) === "stall") return;
      });
      return new Promise<RankResult | null>((resolve) => {
        if (modeOf(r) === "stall") {
          // A hung peer: kept alive until the others gave up, then removed.
          setTimeout(() => {
            child.kill("SIGKILL");
            resolve(null);
          }, timeoutMs + 3_000);
          return;
        }
        child.on("exit", () => resolve(out ? (JSON.parse(out) as RankResult) : { ok: false, message: "no output" }));
      });
    }),
  );
}

describe("communicator (Gloo)", () => {
  it.each([2, 4])("all-reduce over %i ranks sums every rank's buffer", async (world) => {
    const results = await ranks(world, () => "sum");
    const n = (world * (world + 1)) / 2;
    for (const r of results) expect(r).toEqual({ ok: true, data: [n, 10 * n] });
  });

  it("watchdog: a rank that never joins the collective makes the others fail with communicator_error within timeout + 1 s", async () => {
    const timeoutMs = 1_500;
    const [leader, , hung] = await ranks(3, (r) => (r === 2 ? "stall" : "sum"), timeoutMs);
    expect(hung).toBeNull();
    expect(leader?.ok).toBe(false);
    expect(leader?.native).toBe(true);
    expect(leader?.status).toBe("communicator_error");
    expect(leader?.message).toMatch(/all-reduce failed on rank 0 of 3/);
    expect(leader?.ms).toBeLessThan(timeoutMs + 1_000);
  }, 20_000);

  it("NCCL (GPU ranks)", (ctx) => {
    const caps = capabilities();
    if (!caps.nccl.loadable || caps.cuda.deviceCount < 2)
      ctx.skip(`needs libnccl.so.2 and 2 GPUs (nccl loadable: ${caps.nccl.loadable}, GPUs: ${caps.cuda.deviceCount})`);
    // On a GPU host the same collectives run through connect_nccl; the engine's CUDA path is not wired yet.
    expect(caps.nccl.version).toBeGreaterThan(0);
  });
});

async function logits(g: GoldenCase, world: number): Promise<Float32Array> {
  const out = join(tmp, `${g.name}-w${world}.json`);
  await run(process.execPath, [
    cli,
    "logits",
    "--model",
    g.dir,
    "--tokens",
    g.tokens.join(","),
    "--out",
    out,
    "--precision",
    "exact",
    "--world",
    String(world),
  ]);
  const rows = (JSON.parse(readFileSync(out, "utf8")) as { logits: number[][] }).logits;
  expect(rows).toHaveLength(g.tokens.length);
  return new Float32Array(rows.flat());
}

const heads = (g: GoldenCase) => {
  const c = JSON.parse(readFileSync(join(g.dir, "config.json"), "utf8")) as { num_attention_heads: number; num_key_value_heads: number };
  return [c.num_attention_heads, c.num_key_value_heads];
};
const cases = [2, 4].flatMap((world) =>
  goldenCases()
    .filter((g) => heads(g).every((h) => h % world === 0))
    .map((g) => ({ name: g.name, world, g })),
);

describe("expertmesh logits --world W", () => {
  it.each(cases)(
    "$name over $world ranks equals one rank and the reference",
    async ({ g, world }) => {
      const [one, many] = await Promise.all([logits(g, 1), logits(g, world)]);
      let num = 0;
      let den = 0;
      for (let i = 0; i < one.length; i++) {
        num += ((many[i] as number) - (one[i] as number)) ** 2;
        den += (one[i] as number) ** 2;
      }
      expect(Math.sqrt(num / den)).toBeLessThanOrEqual(1e-4);
      const cmp = compareLogits(many, g, 1e-3);
      expect(cmp.relL2).toBeLessThanOrEqual(1e-4);
      expect(cmp.maxAbs).toBeLessThanOrEqual(1e-3);
      expect(cmp.top1Mismatches).toEqual([]);
    },
    60_000,
  );

  it("covers g5 (made for W = 1, 2, 4, 8) at W = 4", () => {
    expect(cases.some((c) => c.world === 4 && c.name === "g5-kv8-for-ep")).toBe(true);
  });
});

describe("resident shard", () => {
  it.each([2, 4])("each of %i ranks holds only ~1/W of the expert bytes", async (world) => {
    const g = goldenCases().find((c) => c.name === "g5-kv8-for-ep") as GoldenCase;
    const whole = (await Model.load(g.dir)).shard.expertBytes;
    const shards = await Promise.all(Array.from({ length: world }, (_, rank) => Model.load(g.dir, { rank, world })));
    for (const m of shards) expect(m.shard.expertBytes).toBeCloseTo(whole / world, -1);
    expect(shards.reduce((a, m) => a + m.shard.expertBytes, 0)).toBe(whole);
  });
});
