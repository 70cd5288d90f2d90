import { Accelerator, type Member, MemberState } from "@expertmesh/proto/cluster";
import { describe, expect, it } from "vitest";
import { StaticWorkerDirectory } from "../../domain/worker-directory.ts";
import { modelsOf } from "./models.ts";

const member = (id: string, model: string, device: string, registeredUnixMs: number): Member => ({
  workerId: id,
  address: "127.0.0.1:1",
  model,
  accelerator: Accelerator.ACCELERATOR_CPU,
  state: MemberState.MEMBER_STATE_READY,
  groupId: "",
  rank: 0,
  worldSize: 1,
  registeredUnixMs,
  numExperts: 0,
  wantsGroup: false,
  device,
  precision: "default",
});

describe("modelsOf", () => {
  it("lists each model once: its earliest registration, the distinct devices of its workers sorted, none for an empty device", () => {
    const directory = new StaticWorkerDirectory([
      member("a", "m", "cuda:1", 5_000),
      member("b", "m", "cpu", 3_000),
      member("c", "m", "cuda:1", 9_000),
      member("d", "m", "", 9_000), // a worker from before the roster carried devices
      member("e", "other", "", 1_000),
    ]);
    expect(modelsOf(directory)).toEqual([
      { id: "m", object: "model", created: 3, owned_by: "openai", devices: ["cpu", "cuda:1"] },
      { id: "other", object: "model", created: 1, owned_by: "openai", devices: [] },
    ]);
  });
});
