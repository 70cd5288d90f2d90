/**
 * @expertmesh/common — the small plumbing every service shares: config, logs, traces, metrics, errors.
 * Deliberately tiny; anything domain-specific lives in its service.
 */
export { ConfigError, type ConfigSpec, loadConfig } from "./config.ts";
export {
  AppError,
  defineErrorCatalogue,
  type ErrorExtra,
  type ErrorSpec,
  GrpcCode,
  type OpenAiErrorType,
} from "./errors.ts";
export { createLogger, type Logger, type LogLevel } from "./logger.ts";
export { AggregatorRegistry, Counter, createMetricsRegistry, Gauge, Histogram, type Registry, startMetricsServer } from "./metrics.ts";
export { startTelemetry, type Telemetry, type TelemetryOptions } from "./telemetry.ts";
