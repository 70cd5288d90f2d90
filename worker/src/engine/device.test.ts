/**
 * WORKER_DEVICE (#22): which device the engine runs on, resolved and checked once at startup — against a
 * machine's device lists given here, and as loadWorkerConfig resolves it on this machine.
 */
import { ConfigError } from "@expertmesh/common/config";
import { capabilities } from "@expertmesh/kernels";
import { describe, expect, it } from "vitest";
import { loadWorkerConfig } from "../config.ts";
import { resolveDevice } from "./device.ts";

const noGpu = ["cpu", "cuda-emu"] as const;
const twoGpus = ["cpu", "cuda-emu", "cuda:0", "cuda:1"] as const;

describe("resolveDevice", () => {
  it("keeps a device the machine has", () => {
    expect(resolveDevice("cpu", 0, noGpu)).toBe("cpu");
    expect(resolveDevice("cuda-emu", 3, noGpu)).toBe("cuda-emu");
    expect(resolveDevice("cuda:1", 0, twoGpus)).toBe("cuda:1");
  });

  it("unset: cuda:<rank mod GPUs> when a CUDA device is visible, else cpu", () => {
    expect(resolveDevice("", 0, noGpu)).toBe("cpu");
    expect(resolveDevice("", 5, noGpu)).toBe("cpu");
    expect(resolveDevice("", 0, twoGpus)).toBe("cuda:0");
    expect(resolveDevice("", 1, twoGpus)).toBe("cuda:1");
    expect(resolveDevice("", 2, twoGpus)).toBe("cuda:0");
    expect(resolveDevice("", 9, ["cpu", "cuda-emu", "cuda:0"])).toBe("cuda:0"); // one GPU per pod
  });

  it("refuses a GPU the machine does not show, naming WORKER_DEVICE and what there is", () => {
    expect(() => resolveDevice("cuda:0", 0, noGpu)).toThrow(
      "device (WORKER_DEVICE): 'cuda:0' is not a device here: this machine shows 0 CUDA device(s)",
    );
    expect(() => resolveDevice("cuda:2", 0, twoGpus)).toThrow("set WORKER_DEVICE to one of cpu, cuda-emu, cuda:0, cuda:1");
  });

  it("refuses anything but cpu, cuda-emu and cuda:N", () => {
    for (const bad of ["gpu", "cuda", "cuda:", "CUDA:0", "cuda:-1", " cpu", "cuda-emu:0"])
      expect(() => resolveDevice(bad, 0, twoGpus), bad).toThrow(`must be cpu, cuda-emu or cuda:N, got '${bad}'`);
  });
});

describe("loadWorkerConfig: WORKER_DEVICE", () => {
  it("is resolved once: cuda-emu as given, unset as this machine's default", () => {
    expect(loadWorkerConfig({ WORKER_DEVICE: "cuda-emu" }).device).toBe("cuda-emu");
    expect(loadWorkerConfig({ WORKER_DEVICE: "cpu" }).device).toBe("cpu");
    const gpus = capabilities().devices.some((d) => d.startsWith("cuda:"));
    expect(loadWorkerConfig({}).device).toBe(gpus ? "cuda:0" : "cpu");
  });

  it("refuses a bad value with a ConfigError naming the setting", () => {
    const err = (() => {
      try {
        loadWorkerConfig({ WORKER_DEVICE: "gpu" });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues).toEqual(["device (WORKER_DEVICE): must be cpu, cuda-emu or cuda:N"]);
  });

  it("refuses a GPU this machine does not show", () => {
    const n = capabilities().devices.filter((d) => d.startsWith("cuda:")).length;
    expect(() => loadWorkerConfig({ WORKER_DEVICE: `cuda:${n}` })).toThrow(/WORKER_DEVICE\): 'cuda:\d+' is not a device here/);
  });
});
