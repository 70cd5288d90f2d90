import { describe, expect, it } from "vitest";
import { parseGpuCheckArgs, USAGE, UsageError } from "./args.ts";

describe("gpu-check arguments", () => {
  it("defaults: a real run, logs to $OUT when set, else to a temporary directory (undefined here)", () => {
    expect(parseGpuCheckArgs([], {})).toEqual({ dryRun: false, help: false, out: undefined });
    expect(parseGpuCheckArgs([], { OUT: "/dev-out" })).toEqual({ dryRun: false, help: false, out: "/dev-out" });
    expect(parseGpuCheckArgs([], { OUT: "" }).out).toBeUndefined();
  });

  it("--dry-run, --out DIR (over $OUT), --out=DIR, --help and -h", () => {
    expect(parseGpuCheckArgs(["--dry-run", "--out", "/logs"], { OUT: "/dev-out" })).toEqual({ dryRun: true, help: false, out: "/logs" });
    expect(parseGpuCheckArgs(["--out=/logs"], {}).out).toBe("/logs");
    expect(parseGpuCheckArgs(["--help"], {}).help).toBe(true);
    expect(parseGpuCheckArgs(["-h"], {}).help).toBe(true);
  });

  it.each([
    [["--bogus"], /Unknown option '--bogus'/],
    [["--dry-run", "extra"], /Unexpected argument 'extra'/],
    [["--out"], /--out.*argument missing/],
    [["--out="], /--out needs a directory/],
    [["--dry-run=yes"], /does not take an argument/],
  ])("%j is a usage error: %s", (argv, message) => {
    expect(() => parseGpuCheckArgs(argv, {})).toThrow(UsageError);
    expect(() => parseGpuCheckArgs(argv, {})).toThrow(message);
  });

  it("the usage names every option", () => {
    for (const option of ["--dry-run", "--out DIR", "--help"]) expect(USAGE).toContain(option);
  });
});
