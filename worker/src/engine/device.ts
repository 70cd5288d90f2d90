/**
 * The device this worker's engine runs on (WORKER_DEVICE): "cpu", "cuda-emu" (the CUDA kernels run on
 * the CPU by the project's emulator: slow, for tests) or "cuda:N". Unset, it is cuda:<rank mod GPUs> when
 * this build sees a CUDA device (one pod per GPU sees its GPU as cuda:0; ranks packed on a host take
 * their GPUs in order), else cpu. Resolved and checked once at startup against what the engine
 * reports it can see (capabilities().devices); it does not check that the engine can run there yet.
 */
import { type Backend, capabilities } from "@expertmesh/kernels";

/** What WORKER_DEVICE accepts ("" = choose as above). */
export const DEVICE_SETTING = /^(|cpu|cuda-emu|cuda:\d+)$/;

/**
 * The concrete device for a worker of configured `rank`. `devices` are those the engine may name here
 * (capabilities().devices). Throws a message naming WORKER_DEVICE when the setting names a GPU not seen.
 */
export function resolveDevice(setting: string, rank: number, devices: readonly Backend[] = capabilities().devices): Backend {
  if (!DEVICE_SETTING.test(setting)) throw new Error(`device (WORKER_DEVICE): must be cpu, cuda-emu or cuda:N, got '${setting}'`);
  const gpus = devices.filter((d) => d.startsWith("cuda:")).length;
  // The rank modulo the visible GPUs stands in for the local rank (ranks of a host are consecutive).
  const device = (setting || (gpus > 0 ? `cuda:${rank % gpus}` : "cpu")) as Backend;
  if (!devices.includes(device)) {
    const why = `'${setting}'`;
    throw new Error(
      `device (WORKER_DEVICE): ${why} is not a device here: this machine shows ${gpus} CUDA device(s)` +
        (gpus > 0 ? `; set WORKER_DEVICE to one of ${devices.join(", ")}` : ""),
    );
  }
  return device;
}
