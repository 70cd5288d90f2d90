/** How a gateway's answer says when to come back: retry-after-ms first, else retry-after in seconds. */
import { describe, expect, it } from "vitest";
import { retryAfterMs } from "./line-executor.ts";

describe("retryAfterMs", () => {
  it.each([
    [{ "retry-after-ms": "2000", "retry-after": "2" }, 2000],
    [{ "retry-after": "3" }, 3000],
    [{ "retry-after": "0" }, 0],
    // An HTTP date, or nothing readable: no wait asked, so the line is retried as any other failure.
    [{ "retry-after": "Wed, 21 Oct 2015 07:28:00 GMT" }, undefined],
    [{ "retry-after-ms": "soon" }, undefined],
    [{}, undefined],
  ])("%j → %s", (headers, expected) => {
    expect(retryAfterMs(new Headers(headers))).toBe(expected);
  });
});
