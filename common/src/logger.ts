/**
 * Structured JSON logs (pino). One root logger per process; per-request and per-job children bind
 * reqId / jobId. Credentials never reach a log line.
 */
import { pino } from "pino";

export type Logger = pino.Logger;
export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export function createLogger(service: string, level: LogLevel = "info"): Logger {
  return pino({
    level,
    base: { service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ["authorization", "req.headers.authorization", "headers.authorization", "*.apiKey", "*.api_key"],
      censor: "[redacted]",
    },
  });
}
