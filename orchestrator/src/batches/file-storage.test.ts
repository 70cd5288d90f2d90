/** The FileStorage contract, run against every adapter (in memory, local directory). */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type FileStorage, MemoryFileStorage } from "./file-storage.ts";
import { LocalFileStorage } from "./local-file-storage.ts";

const adapters: [string, () => FileStorage][] = [
  ["memory", () => new MemoryFileStorage()],
  ["local directory", () => new LocalFileStorage(join(mkdtempSync(join(tmpdir(), "fs-conf-")), "files"))],
];

describe.each(adapters)("FileStorage conformance: %s", (_name, make) => {
  it("puts, gets, overwrites idempotently and deletes", async () => {
    const s = make();
    expect(await s.get("file-a")).toBeNull();
    await s.put("file-a", Buffer.from("one\n"));
    await s.put("file-a", Buffer.from("one\n"));
    expect((await s.get("file-a"))?.toString()).toBe("one\n");
    await s.delete("file-a");
    await s.delete("file-a");
    expect(await s.get("file-a")).toBeNull();
  });

  it("writes a streamed source whole, and nothing at all when the source fails midway", async () => {
    const s = make();
    async function* chunks(fail: boolean) {
      yield Buffer.from("one\n");
      yield Buffer.from("two\n");
      if (fail) throw new Error("source broke");
      yield Buffer.from("three\n");
    }
    await s.write("file-s", chunks(false));
    expect((await s.get("file-s"))?.toString()).toBe("one\ntwo\nthree\n");
    const read = await s.read("file-s");
    expect(read && Buffer.concat(await read.toArray()).toString()).toBe("one\ntwo\nthree\n");
    expect(await s.read("file-none")).toBeNull();
    await expect(s.write("file-t", chunks(true))).rejects.toThrow("source broke");
    expect(await s.get("file-t")).toBeNull();
  });
});

describe("LocalFileStorage", () => {
  it("never names a path outside its directory and leaves no temporary files", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fs-local-"));
    const s = new LocalFileStorage(dir);
    await expect(s.get("../etc/passwd")).rejects.toThrow(/invalid file id/);
    await s.put("file-x", Buffer.from("x"));
    await expect(
      s.write(
        "file-y",
        (async function* () {
          yield Buffer.from("partial");
          throw new Error("refused");
        })(),
      ),
    ).rejects.toThrow("refused");
    expect(readdirSync(dir)).toEqual(["file-x"]);
  });
});
