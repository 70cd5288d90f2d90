/**
 * A PrimaryChannel whose other end is in this process (tests of the adapters that run over it): messages
 * are structured-cloned and delivered on a later turn of the event loop, as the cluster's IPC channel
 * with serialization "advanced" does.
 */
import { EventEmitter } from "node:events";
import { answerCalls, type Handlers, type Port, PrimaryChannel } from "../cluster/primary-channel.ts";

function linkedPorts(): { child: Port; primary: Port } {
  const a = new EventEmitter();
  const b = new EventEmitter();
  const to =
    (e: EventEmitter): Port["send"] =>
    (m) =>
      setImmediate(() => e.emit("message", structuredClone(m)));
  return {
    child: { send: to(b), on: (_event, listener) => a.on("message", listener) },
    primary: { send: to(a), on: (_event, listener) => b.on("message", listener) },
  };
}

export function linkedPrimaryChannel(handlers: Handlers, timeoutMs = 2_000): PrimaryChannel {
  const { child, primary } = linkedPorts();
  answerCalls(primary, handlers);
  return new PrimaryChannel(child, { timeoutMs, retryAfterMs: 1_000 });
}
