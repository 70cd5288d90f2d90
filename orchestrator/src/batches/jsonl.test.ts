/** Batch input validation: precise line numbers and fields, as OpenAI's batch errors. */
import { describe, expect, it } from "vitest";
import { endpointErrors, parseBatchInput } from "./jsonl.ts";

const ok = (id: string, url = "/v1/chat/completions") => JSON.stringify({ custom_id: id, method: "POST", url, body: { model: "m" } });

describe("parseBatchInput", () => {
  it("accepts valid lines (CRLF and a final newline too)", () => {
    const r = parseBatchInput(`${ok("a")}\r\n${ok("b", "/v1/responses")}\n`);
    expect(r.errors).toEqual([]);
    expect(r.lines.map((l) => [l.custom_id, l.url])).toEqual([
      ["a", "/v1/chat/completions"],
      ["b", "/v1/responses"],
    ]);
  });

  it.each([
    [
      '{"custom_id": 1, "method": "POST", "url": "/v1/completions", "body": {"model": "m"}}',
      "custom_id",
      "custom_id must be a non-empty string",
    ],
    ['{"custom_id": "x", "method": "GET", "url": "/v1/completions", "body": {"model": "m"}}', "method", 'method must be "POST"'],
    ['{"custom_id": "x", "method": "POST", "url": "/v1/embeddings", "body": {"model": "m"}}', "url", "url must be one of"],
    ['{"custom_id": "x", "method": "POST", "url": "/v1/completions", "body": []}', "body", "body must be a JSON object"],
    ['{"custom_id": "x", "method": "POST", "url": "/v1/completions", "body": {}}', "body.model", "body.model must be"],
    ['{"custom_id": "x", "method": "POST", "url": "/v1/completions", "body": {"model": "m", "stream": true}}', "body.stream", "streaming"],
    ["[1, 2]", null, "must be a JSON object"],
    ["{nope", null, "not valid JSON"],
    ["", null, "empty line"],
  ])("reports %s on its line with its field", (bad, param, message) => {
    const r = parseBatchInput(`${ok("first")}\n${bad}\n${ok("last")}\n`);
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]).toMatchObject({ line: 2, param });
    expect(r.errors[0]?.message).toContain(`Line 2: ${message}`);
  });

  it("rejects duplicate custom_ids and empty files", () => {
    expect(parseBatchInput(`${ok("a")}\n${ok("a")}`).errors[0]).toMatchObject({ code: "duplicate_custom_id", line: 2 });
    expect(parseBatchInput("").errors[0]).toMatchObject({ code: "empty_file" });
  });

  it("checks every line against the batch endpoint", () => {
    const { lines } = parseBatchInput(`${ok("a")}\n${ok("b", "/v1/completions")}`);
    expect(endpointErrors(lines, "/v1/chat/completions")).toEqual([
      expect.objectContaining({ code: "mismatched_url", line: 2, param: "url" }),
    ]);
  });
});
