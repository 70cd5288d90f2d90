/**
 * Expert parallelism on CPU ranks (real processes, Gloo over loopback): `expertmesh logits --world W`
 * equal to W = 1 and to the reference on every golden case whose head counts W divides, and each rank
 * holding only its share of the experts — by the loader's accounting and by the page tables.
 * The communicator itself is tested in communicator.test.ts.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { writeSyntheticCheckpoint } from "./checkpoint/synthetic.ts";
import { Communicator } from "./communicator.ts";
import { Engine } from "./engine.ts";
import { BlockPool } from "./kv-blocks.ts";
import { Model } from "./model.ts";
import { NativeError } from "./native-error.ts";
import { LocalSequence } from "./sequence.ts";
import { compareLogits, type GoldenCase, goldenCases } from "./testing/golden.ts";

const run = promisify(execFile);
const cli = new URL("./cli/main.ts", import.meta.url).pathname;
const residentScript = new URL("./testing/resident-rank.ts", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "expertmesh-ep-"));

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

/**
 * The watchdog inside the forward: this process leads a group of two on g5 with a short timeout, the
 * follower is the CLI's own follower process; a follower that hangs (SIGSTOP) or dies (SIGKILL) makes
 * the leader's step reject with the typed error instead of hanging — the worker's cue that the group is lost.
 */
describe("a step whose follower hangs or dies", () => {
  it.each([
    ["SIGSTOP", "timeout"],
    ["SIGKILL", "peer_lost"],
  ] as const)("%s on the follower: the leader's step rejects with communicator_error (%s) within timeout + 1 s", async (signal, kind) => {
    const g = goldenCases().find((c) => c.name === "g5-kv8-for-ep") as GoldenCase;
    const timeoutMs = 1_500;
    const rendezvous = `file://${mkdtempSync(join(tmp, "rdzv-"))}`;
    const follower = spawn(
      process.execPath,
      [cli, "_follow", "--model", g.dir, "--positions", "64", "--rank", "1", "--world", "2", "--rendezvous", rendezvous],
      { stdio: "ignore" },
    );
    try {
      const model = await Model.load(g.dir, { rank: 0, world: 2 });
      const communicator = await Communicator.connect({ rank: 0, world: 2, rendezvous, timeoutMs });
      const engine = new Engine(model, { numFullBlocks: 8, numSlidingBlocks: 8, communicator });
      const seq = new LocalSequence(engine, new BlockPool(8), new BlockPool(8));
      await seq.feed(g.tokens.slice(0, 4)); // the group works
      follower.kill(signal);
      const started = performance.now();
      const err = await seq.feed(g.tokens.slice(4, 8)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NativeError);
      expect(err).toMatchObject({ statusName: "communicator_error", commFailure: kind });
      expect(performance.now() - started).toBeLessThan(timeoutMs + 1_000);
    } finally {
      follower.kill("SIGKILL");
    }
  });
});

interface Resident {
  rank: number;
  world: number;
  expertBytes: number;
  ownResident: number;
  otherResident: number;
  allExpertBytes: number;
}

/**
 * Page-table residency needs experts far larger than a page-cache folio, and a cold page cache: ranks on
 * one host share it, and a fault maps whatever neighbouring pages another rank already brought in.
 * Dropping the file's cache first makes this host behave like W hosts.
 */
describe("resident shard, by the page tables", () => {
  const dir = join(tmp, "resident-model");
  const tokens = Array.from({ length: 64 }, (_, i) => (i * 389 + 17) % 1024);
  beforeAll(() => {
    // 16 experts of 1.6 MiB per layer (hidden = intermediate = 1024); 8 kv heads so W = 4 divides them.
    const shape = { numLayers: 2, hidden: 1024, intermediate: 1024, numExperts: 16, expertsPerToken: 4, numQHeads: 8, numKvHeads: 8 };
    writeSyntheticCheckpoint({ shape: { ...shape, headDim: 64, vocab: 1024, slidingWindow: 128 }, out: dir, seed: 3 });
  });

  async function residency(world: number): Promise<Resident[]> {
    const file = join(dir, "model.safetensors");
    await run("sync", [file]);
    await run("dd", [`if=${file}`, "iflag=nocache", "count=0", "status=none"]);
    const rendezvous = `file://${mkdtempSync(join(tmp, "rdzv-"))}`;
    return Promise.all(
      Array.from({ length: world }, async (_, r) => {
        const { stdout } = await run(process.execPath, [residentScript, dir, String(r), String(world), rendezvous, tokens.join(",")]);
        return JSON.parse(stdout) as Resident;
      }),
    );
  }

  it.each([1, 2, 4])(
    "with %i rank(s) each rank has its own experts resident and ~nothing of the others'",
    async (world) => {
      const results = await residency(world);
      for (const r of results) {
        const share = (r.ownResident + r.otherResident) / r.allExpertBytes;
        process.stdout.write(
          `[resident] W=${world} rank ${r.rank}: own ${(r.ownResident / 2 ** 20).toFixed(2)} MiB (loader: ${(r.expertBytes / 2 ** 20).toFixed(2)} MiB), ` +
            `others' ${(r.otherResident / 2 ** 20).toFixed(2)} MiB, ${(100 * share).toFixed(1)}% of all expert bytes\n`,
        );
        expect(r.expertBytes).toBe(r.allExpertBytes / world);
        expect(r.ownResident).toBeGreaterThanOrEqual(0.99 * r.expertBytes); // populated at load
        expect(share).toBeLessThanOrEqual(1 / world + 0.05); // slop: readahead at the slices' edges
      }
    },
    60_000,
  );
});
