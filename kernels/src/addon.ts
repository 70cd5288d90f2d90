/**
 * Loads the compiled addon (build/Release/expertmesh_kernels.node) once and registers the error class.
 * The raw addon is untyped; this file is the only place that touches it.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { NativeError } from "./native-error.ts";

export interface RawCapabilities {
  cpu: {
    avx2: boolean;
    fma: boolean;
    avx512f: boolean;
    avx512bw: boolean;
    avx512bf16: boolean;
    avx512vnni: boolean;
    avxvnni: boolean;
    amxBf16: boolean;
    amxInt8: boolean;
    logicalCores: number;
  };
  cuda: { compiled: boolean; deviceCount: number; architectures: string; error: string };
  nccl: { loadable: boolean; version: number };
  gloo: { compiled: boolean; usable: boolean };
}

export interface Addon {
  setErrorClass(ctor: typeof NativeError): void;
  capabilities(): RawCapabilities;
}

const addonPath = join(dirname(fileURLToPath(import.meta.url)), "../build/Release/expertmesh_kernels.node");
let loaded: Addon | undefined;

export function addon(): Addon {
  if (loaded) return loaded;
  if (!existsSync(addonPath)) {
    throw new Error(`native addon not built: ${addonPath} is missing (run: npx turbo run build --filter=@expertmesh/kernels)`);
  }
  const mod = createRequire(import.meta.url)(addonPath) as Addon;
  mod.setErrorClass(NativeError);
  loaded = mod;
  return mod;
}
