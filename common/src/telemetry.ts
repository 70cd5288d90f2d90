/**
 * OpenTelemetry bootstrap. Spans follow the GenAI semantic conventions (gen_ai.*). Traces are exported
 * over OTLP only when OTEL_EXPORTER_OTLP_ENDPOINT is set; tests pass their own span processor
 * (e.g. an InMemorySpanExporter) instead. Without either, spans are created and dropped cheaply.
 */
import { type Tracer, trace } from "@opentelemetry/api";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { BatchSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from "@opentelemetry/semantic-conventions";

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** Extra processors (tests). */
  spanProcessors?: SpanProcessor[];
  /** Instrumentations to enable (http, grpc, ioredis...), passed by each service. */
  instrumentations?: NonNullable<ConstructorParameters<typeof NodeSDK>[0]>["instrumentations"];
  env?: NodeJS.ProcessEnv;
}

export interface Telemetry {
  tracer: Tracer;
  exporting: boolean;
  shutdown(): Promise<void>;
}

export function startTelemetry(options: TelemetryOptions): Telemetry {
  const env = options.env ?? process.env;
  const processors: SpanProcessor[] = [...(options.spanProcessors ?? [])];
  const exporting = Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
  if (exporting) processors.push(new BatchSpanProcessor({ exporter: new OTLPTraceExporter() }));
  const sdk = new NodeSDK({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME ?? options.serviceName,
      [ATTR_SERVICE_VERSION]: options.serviceVersion ?? "0.1.0",
    }),
    spanProcessors: processors,
    instrumentations: options.instrumentations ?? [],
    // Metrics are served by prom-client on /metrics; the SDK must not start its own reader.
    metricReaders: [],
  });
  sdk.start();
  return {
    tracer: trace.getTracer(options.serviceName),
    exporting,
    shutdown: () => sdk.shutdown(),
  };
}
