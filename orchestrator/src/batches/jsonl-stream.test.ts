/** The streaming batch input check: the same verdicts as parseBatchInput, whatever the chunking, and the first problem ends it. */
import { AppError } from "@expertmesh/common";
import { describe, expect, it } from "vitest";
import { endpointErrors, parseBatchInput, recordedEndpointErrors } from "./jsonl.ts";
import { BatchInputScanner, scanned } from "./jsonl-stream.ts";

const ok = (id: string) => JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions", body: { model: "m", note: "é✓" } });

/** Scans `text` cut into pieces of `size` bytes; the thrown AppError, or the line count. */
function scan(text: string, size: number, limits = { maxLineBytes: 1 << 20 }): AppError | number {
  const s = new BatchInputScanner(limits);
  const bytes = Buffer.from(text);
  try {
    for (let i = 0; i < bytes.length; i += size) s.push(bytes.subarray(i, i + size));
    s.end();
    return s.lines;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
}

describe("BatchInputScanner", () => {
  const files = [
    `${ok("a")}\r\n${ok("b")}\n`,
    `${ok("a")}\n${ok("b")}`,
    `${ok("a")}\n{nope\n${ok("c")}\n`,
    `${ok("a")}\n\n${ok("c")}\n`,
    `${ok("a")}\n${ok("a")}\n`,
    `${ok("a")}\n${JSON.stringify({ custom_id: "x", method: "GET", url: "/v1/completions", body: { model: "m" } })}\n`,
    "\n",
    "",
  ];

  it.each(files.map((f, i) => [i, f]))(
    "file %i: the verdict of parseBatchInput at every chunk size (lines split anywhere, mid-character too)",
    (_i, text) => {
      const whole = parseBatchInput(text);
      for (const size of [1, 2, 3, 7, 64, 1 << 20]) {
        const r = scan(text, size);
        if (whole.errors.length === 0) expect(r).toBe(whole.lines.length);
        else {
          expect(r).toBeInstanceOf(AppError);
          expect((r as AppError).message).toBe(whole.errors[0]?.message);
          expect((r as AppError).toOpenAi().error.param).toBe(whole.errors[0]?.param);
        }
      }
    },
  );

  it("refuses a line over the cap as soon as it passes the cap, before its newline arrives", () => {
    const s = new BatchInputScanner({ maxLineBytes: 100 });
    s.push(Buffer.from(`${ok("a")}\n`));
    s.push(Buffer.from("x".repeat(60)));
    expect(() => s.push(Buffer.from("x".repeat(60)))).toThrow("Line 2: longer than 100 bytes");
  });

  it("refuses the line past the count cap when it ends, however much follows", () => {
    const s = new BatchInputScanner({ maxLineBytes: 1000, maxLines: 3 });
    s.push(Buffer.from(`${ok("a")}\n${ok("b")}\n${ok("c")}\n`));
    expect(() => s.push(Buffer.from(`${ok("d")}\n`))).toThrow("more than 3 requests; a batch takes at most 3");
  });

  it("records the first line of each endpoint, which gives the batch endpoint check without the lines", () => {
    const line = (id: string, url: string) => JSON.stringify({ custom_id: id, method: "POST", url, body: { model: "m" } });
    const urls = ["/v1/chat/completions", "/v1/responses", "/v1/chat/completions", "/v1/completions", "/v1/responses"];
    const text = urls.map((u, i) => line(`l${i}`, u)).join("\n");
    const s = new BatchInputScanner({ maxLineBytes: 1000 });
    s.push(Buffer.from(text));
    s.end();
    expect(s.endpoints).toEqual({ "/v1/chat/completions": 1, "/v1/responses": 2, "/v1/completions": 4 });
    const whole = endpointErrors(parseBatchInput(text).lines, "/v1/responses");
    expect(recordedEndpointErrors(s.endpoints, "/v1/responses")).toEqual([whole[0], whole[2]]);
    expect(recordedEndpointErrors({ "/v1/responses": 1 }, "/v1/responses")).toEqual([]);
  });

  it("scanned() passes chunks through and stops at the first bad chunk: nothing after it is pulled", async () => {
    let pulled = 0;
    function* source() {
      for (const c of [`${ok("a")}\n`, "{bad\n", `${ok("c")}\n`, `${ok("d")}\n`]) {
        pulled++;
        yield Buffer.from(c);
      }
    }
    const out: string[] = [];
    const run = async () => {
      for await (const c of scanned(source(), new BatchInputScanner({ maxLineBytes: 1000 }))) out.push(Buffer.from(c).toString());
    };
    await expect(run()).rejects.toThrow("Line 2: not valid JSON");
    expect(out).toEqual([`${ok("a")}\n`]);
    expect(pulled).toBe(2);
  });
});
