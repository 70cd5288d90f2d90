/**
 * The pages and the dashboard's state over HTTP, with API keys on: the pages are public and carry no
 * secret (and a CSP allowing only this origin); GET /dashboard/api/state needs a key like the API, and
 * its traffic is what the gateway's /metrics counted.
 */

import { HarmonyTokenizer } from "@expertmesh/grammar/tokenizer";
import { afterEach, describe, expect, it } from "vitest";
import { startScriptedWorker } from "../../testing/scripted-worker.ts";
import { startTestGateway } from "../../testing/test-gateway.ts";

const KEY = "sk-dashboard-route-0123456789";
const tok = new HarmonyTokenizer();
let cleanup: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c();
  cleanup = [];
});

async function gateway(ui: Record<string, unknown> = { dashboard_sample_ms: 250 }) {
  const worker = await startScriptedWorker([], { fallback: tok.encodeWithSpecials("<|channel|>final<|message|>Hi there.<|return|>") });
  const gw = await startTestGateway({
    address: worker.address,
    model: "gpt-oss-20b",
    tokenizer: tok,
    config: { api_keys: [KEY], ui },
  });
  cleanup.push(
    () => worker.close(),
    () => gw.close(),
  );
  return gw.base;
}

const auth = { authorization: `Bearer ${KEY}` };

describe("the pages and GET /dashboard/api/state", () => {
  it("serves both pages and their assets without a key, with no secret in them and a same-origin CSP", async () => {
    const base = await gateway();
    for (const path of ["/", "/dashboard"]) {
      const res = await fetch(`${base}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/html");
      expect(res.headers.get("content-security-policy")).toContain("default-src 'self'");
      const html = await res.text();
      expect(html).not.toContain(KEY);
      const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      expect(script).toBeDefined();
      const asset = await fetch(`${base}${script}`);
      expect(asset.status).toBe(200);
      expect(await asset.text()).not.toContain(KEY);
    }
  });

  it("answers the state only with a key, and charts the requests /metrics counted", async () => {
    const base = await gateway();
    const denied = await fetch(`${base}/dashboard/api/state`);
    expect(denied.status).toBe(401);
    expect(((await denied.json()) as { error: { code: string } }).error.code).toBe("invalid_api_key");

    const state = async () => (await (await fetch(`${base}/dashboard/api/state`, { headers: auth })).json()) as Record<string, unknown>;
    const first = await state();
    expect(first.groups).toMatchObject([{ model: "gpt-oss-20b", state: "ready", ranks: [{ rank: 0, state: "ready" }] }]);
    expect(first.batches).toBeNull();

    const body = JSON.stringify({ model: "gpt-oss-20b", messages: [{ role: "user", content: "Hi" }] });
    const sent = 3;
    for (let i = 0; i < sent; i++) {
      const r = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json" },
        body,
      });
      expect(r.status).toBe(200);
    }
    const bad = await fetch(`${base}/v1/chat/completions`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: "{}",
    });
    expect(bad.status).toBe(400);

    // Readings every 250 ms: poll, as the page does, until the window with the requests is charted.
    type Point = { requestsPerS: number; errorsPerS: Record<string, number>; ttftP50: number | null };
    const charted = (ps: Point[]) => ps.some((p) => (p.errorsPerS["400"] ?? 0) > 0) && ps.some((p) => p.ttftP50 !== null);
    const deadline = Date.now() + 30_000;
    let points = (await state()).traffic as Point[];
    while (!charted(points) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      points = (await state()).traffic as Point[];
    }
    expect(charted(points)).toBe(true);
    expect(points.some((p) => p.requestsPerS > 0)).toBe(true);
    expect(points.every((p) => p.ttftP50 === null || p.ttftP50 > 0)).toBe(true);
    // The dashboard's own reads (and the pages) are not API traffic: only /v1/ answers count.
    expect(new Set(points.flatMap((p) => Object.keys(p.errorsPerS)))).toEqual(new Set(["400"]));
  });

  it("serves neither the pages nor the state with the UI turned off", async () => {
    const base = await gateway({ enabled: false });
    for (const path of ["/", "/dashboard", "/dashboard/api/state"])
      expect((await fetch(`${base}${path}`, { headers: auth })).status).toBe(404);
  });
});
