/**
 * The JS error class for failures reported by the native engine. The addon constructs it (it is
 * registered with setErrorClass at load time), so C++ status codes surface as a typed error.
 */
export const NativeStatus = {
  invalid_argument: 1,
  unsupported_argument: 2,
  invalid_state: 3,
  io_error: 4,
  insufficient_memory: 5,
  insufficient_resources: 6,
  unsupported_system: 7,
  context_overflow: 8,
  invalid_checkpoint: 9,
  communicator_error: 10,
  /** A step produced NaN or infinite logits: the weights or config are broken; the step's results are discarded. */
  numeric_error: 11,
} as const;
export type NativeStatusName = keyof typeof NativeStatus;

/**
 * Why a communicator_error happened: `timeout` (a peer did not answer within the watchdog timeout),
 * `peer_lost` (a peer's connection broke: it died or aborted), `aborted` (abort() was called or an
 * earlier collective failed), `rendezvous` (the ranks did not all join in time), `transport` (the
 * transport is unavailable or failed).
 */
export const COMM_FAILURES = ["timeout", "peer_lost", "aborted", "rendezvous", "transport"] as const;
export type CommFailure = (typeof COMM_FAILURES)[number];

export class NativeError extends Error {
  override readonly name = "NativeError";
  readonly status: number;
  readonly statusName: NativeStatusName | "unknown";
  /** Set when statusName is communicator_error. */
  readonly commFailure: CommFailure | undefined;

  constructor(status: number, statusName: string, message: string, commFailure?: string) {
    super(message);
    this.status = status;
    this.statusName = statusName in NativeStatus ? (statusName as NativeStatusName) : "unknown";
    this.commFailure = COMM_FAILURES.find((f) => f === commFailure);
  }
}
