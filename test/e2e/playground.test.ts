/**
 * The playground (/) in headless Chromium at phone width (375 px), against a real gateway with API keys
 * on and a scripted worker behind it (exact Harmony outputs, one token every TOKEN_MS: what the page
 * shows is known in advance, and streams slowly enough to watch).
 * - Without a key the page shows the API's 401 as the API sent it; with one it lists the models.
 * - A chat streams: the reasoning pane fills first, then the answer grows token by token; token counts
 *   and timings appear under it.
 * - A tool defined in the page's editor (invalid JSON is refused first) is called; its call shows, a
 *   hand-written result goes back to the model as a tool message, and the answer after it shows.
 * - The raw Harmony tokens of a turn show on demand: every id with its string, as /tokenize renders the
 *   conversation; special tokens set apart, a token holding part of a character as its bytes in hex.
 * - A structured output schema, the sampling settings and the reasoning effort reach the worker.
 * - axe-core finds no serious or critical violation; nothing scrolls sideways at 375 px.
 */
import {
  HarmonyTokenizer,
  type ScriptedWorker,
  startScriptedWorker,
  startTestGateway,
  type TestGateway,
} from "@expertmesh/gateway/testing";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fitsWidth, launchChromium, screenshot, seriousViolations } from "./browser.ts";

const KEY = "sk-playground-test-0123456789";
const TOKEN_MS = 60;
const tok = new HarmonyTokenizer();
const out = (s: string) => tok.encodeWithSpecials(s);
const REASONING = "The user greets me. I should greet back and offer help.";
// The parrot (4 UTF-8 bytes) takes three tokens: the raw token view shows its bytes.
const ANSWER = "Hello! I am a mesh of experts 🦜. How can I help you today?";
const TOOL = {
  type: "function",
  function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
};

let worker: ScriptedWorker;
let gateway: TestGateway;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  worker = await startScriptedWorker(
    [
      out(`<|channel|>analysis<|message|>${REASONING}<|end|><|start|>assistant<|channel|>final<|message|>${ANSWER}<|return|>`),
      out(
        '<|channel|>analysis<|message|>Need the weather.<|end|><|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city":"Paris"}<|call|>',
      ),
      out("<|channel|>final<|message|>It is sunny in Paris.<|return|>"),
      out('<|channel|>final<|message|>{"answer":"yes"}<|return|>'),
    ],
    { tokenIntervalMs: TOKEN_MS },
  );
  gateway = await startTestGateway({ address: worker.address, model: "gpt-oss-20b", tokenizer: tok, config: { api_keys: [KEY] } });
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 375, height: 812 } });
});
afterAll(async () => {
  await browser?.close();
  await gateway?.close();
  await worker?.close();
});

/** Records the reasoning and answer lengths of the last assistant message at every DOM change. */
async function recordStream(p: Page): Promise<void> {
  await p.evaluate(() => {
    const seen: Array<[number, number]> = [];
    (globalThis as unknown as { seen: typeof seen }).seen = seen;
    const len = (id: string) => [...document.querySelectorAll(`[data-testid=${id}]`)].at(-1)?.textContent?.length ?? 0;
    new MutationObserver(() => seen.push([len("reasoning"), len("answer")])).observe(document.body, {
      subtree: true,
      childList: true,
      characterData: true,
    });
  });
}

describe("the playground", () => {
  it("shows the API's error without a key, then the models once a key is entered", async () => {
    await page.goto(`${gateway.base}/`);
    const error = page.getByTestId("api-error");
    await error.waitFor();
    expect(await error.textContent()).toContain("HTTP 401");
    expect(await error.textContent()).toContain("You didn't provide an API key");
    await screenshot(page, "playground-401");
    await page.getByLabel("API key").fill(KEY);
    await page.getByRole("button", { name: "Save key" }).click();
    await page.locator("#model option[value='gpt-oss-20b']").waitFor({ state: "attached" });
    await error.waitFor({ state: "detached" });
    expect(await page.evaluate(() => localStorage.getItem("expertmesh.apiKey"))).toBe(KEY);
  });

  it("streams a chat: reasoning first, then the answer token by token, with counts and timings", async () => {
    await recordStream(page);
    await page.getByLabel("Message").fill("Hello!");
    await page.getByRole("button", { name: "Send" }).click();
    const stats = page.getByTestId("stats");
    await stats.waitFor({ timeout: 60_000 });
    expect(await page.getByTestId("answer").textContent()).toBe(ANSWER);
    expect(await page.getByTestId("reasoning").textContent()).toBe(REASONING);
    const seen = (await page.evaluate(() => (globalThis as unknown as { seen: Array<[number, number]> }).seen)) as Array<[number, number]>;
    // The reasoning pane had text while the answer had none, and the answer grew through several lengths.
    expect(seen.some(([r, a]) => r > 0 && a === 0)).toBe(true);
    const partial = new Set(seen.filter(([, a]) => a > 0 && a < ANSWER.length).map(([, a]) => a));
    expect(partial.size).toBeGreaterThanOrEqual(3);
    const firstAnswer = seen.find(([, a]) => a > 0);
    expect(firstAnswer?.[0]).toBe(REASONING.length);
    const text = (await stats.textContent()) ?? "";
    expect(text).toMatch(/\d+ prompt · \d+ completion \(\d+ reasoning\) tokens · TTFT \d+ ms · [\d.]+ tokens\/s/);
    await screenshot(page, "playground-chat");
  });

  it("shows the raw Harmony tokens of a turn: each id with its string, specials set apart, a split character as bytes", async () => {
    const messages = [
      { role: "user", content: "Hello!" },
      { role: "assistant", content: ANSWER },
    ];
    const rendered = async () => {
      const res = await fetch(`${gateway.base}/tokenize`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-oss-20b", messages, reasoning_effort: "medium" }),
      });
      return ((await res.json()) as { tokens: number[] }).tokens;
    };
    // Rendered before and after: a turn crossing midnight UTC renders one of the two dates.
    const before = await rendered();
    await page.getByRole("button", { name: "Show Harmony tokens" }).click();
    const list = page.getByTestId("harmony-tokens");
    await list.waitFor();
    const after = await rendered();
    const shown = await list.locator("li").evaluateAll((items) =>
      items.map((li) => ({
        id: Number((li as HTMLElement).dataset.id),
        kind: (li as HTMLElement).dataset.kind,
        text: li.querySelector(".tok-text")?.textContent,
        idText: li.querySelector(".tok-id")?.textContent,
        background: getComputedStyle(li).backgroundColor,
      })),
    );
    expect([before, after]).toContainEqual(shown.map((s) => s.id));
    const visible = (t: string) => t.replaceAll(" ", "␣").replaceAll("\n", "⏎");
    const hex = (id: number) => [...tok.bytes(id)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    for (const s of shown) {
      expect(s.idText).toBe(String(s.id));
      const whole = tok.wholeText(s.id);
      if (tok.isSpecial(s.id)) expect(s).toMatchObject({ kind: "special", text: tok.decode([s.id]) });
      else if (whole === null) expect(s).toMatchObject({ kind: "bytes", text: hex(s.id) });
      else expect(s).toMatchObject({ kind: "text", text: visible(whole) });
    }
    const texts = shown.map((s) => s.text);
    for (const name of ["<|start|>", "<|channel|>", "<|message|>", "<|end|>"]) expect(texts).toContain(name);
    expect(shown.filter((s) => s.kind === "bytes").length).toBeGreaterThanOrEqual(2);
    // Set apart by more than their text: special tokens have their own background.
    const bg = (kind: string) => new Set(shown.filter((s) => s.kind === kind).map((s) => s.background));
    expect([...bg("special")].some((b) => bg("text").has(b))).toBe(false);
    expect(await seriousViolations(page)).toEqual([]);
    expect(await fitsWidth(page)).toBe(true);
    await screenshot(page, "playground-tokens");
  });

  it("defines a tool, shows its call, and sends a hand-written result back", async () => {
    await page.getByRole("button", { name: "Clear" }).click();
    const tools = page.getByLabel("Tools (JSON: OpenAI function tools)");
    await tools.fill("[{");
    await page.getByText(/^not JSON/).waitFor();
    expect(await page.getByRole("button", { name: "Send" }).isDisabled()).toBe(true);
    await tools.fill(JSON.stringify([TOOL], null, 2));
    await page.locator("#tools-status", { hasText: "valid" }).waitFor();
    await page.getByLabel("Message").fill("What is the weather in Paris?");
    await page.getByRole("button", { name: "Send" }).click();
    const call = page.getByTestId("tool-call");
    await call.waitFor({ timeout: 60_000 });
    await page.getByLabel("Result of get_weather").waitFor();
    expect(await call.locator("code").textContent()).toBe('get_weather({"city":"Paris"})');
    await page.getByLabel("Result of get_weather").fill("Sunny, 21 degrees");
    await page.getByRole("button", { name: "Send result" }).click();
    await page.getByTestId("answer").last().filter({ hasText: "It is sunny in Paris." }).waitFor({ timeout: 60_000 });
    expect(await page.getByTestId("msg-tool").textContent()).toContain("Sunny, 21 degrees");
    // The model saw the hand-written result in its prompt, and the tool in its developer message.
    const prompt = tok.decode(worker.requests.at(-1)?.promptTokenIds ?? []);
    expect(prompt).toContain("Sunny, 21 degrees");
    expect(prompt).toContain("get_weather");
    await page.getByTestId("stats").last().waitFor();
    await screenshot(page, "playground-tool");
  });

  it("sends a structured output schema and the sampling settings", async () => {
    await page.getByRole("button", { name: "Clear" }).click();
    await page.getByLabel("Tools (JSON: OpenAI function tools)").fill("");
    const schema = { type: "object", properties: { answer: { type: "string" } }, required: ["answer"] };
    await page.getByLabel("Structured output (JSON Schema)").fill(JSON.stringify(schema));
    await page.locator("#schema-status", { hasText: "valid" }).waitFor();
    await page.getByLabel("Temperature").fill("0.5");
    await page.getByLabel("Seed").fill("7");
    await page.getByLabel("Max tokens").fill("64");
    await page.getByLabel("Reasoning effort").selectOption("low");
    await page.getByLabel("Message").fill("Answer in JSON.");
    await page.getByRole("button", { name: "Send" }).click();
    await page.getByTestId("answer").filter({ hasText: '{"answer":"yes"}' }).waitFor({ timeout: 60_000 });
    const request = worker.requests.at(-1);
    expect(request?.maxTokens).toBe(64);
    expect(request?.sampling?.temperature).toBeCloseTo(0.5, 6);
    expect(Number(request?.sampling?.seed)).toBe(7);
    // The schema reached the worker as the constraint of the final channel; the effort, the system message.
    expect(request?.constraint?.specJson).toContain(JSON.stringify(schema.properties));
    expect(tok.decode(request?.promptTokenIds ?? [])).toContain("Reasoning: low");
    await screenshot(page, "playground-structured");
  });

  it("has no serious accessibility violation and fits 375 px", async () => {
    expect(await seriousViolations(page)).toEqual([]);
    expect(await fitsWidth(page)).toBe(true);
    await screenshot(page, "playground-375");
  });
});
