/** @expertmesh/kernels — the typed TypeScript face of the native engine. */
export { type Capabilities, capabilities } from "./capabilities.ts";
export { NativeError, NativeStatus, type NativeStatusName } from "./native-error.ts";
