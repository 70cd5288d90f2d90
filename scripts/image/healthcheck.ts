/**
 * The image's HEALTHCHECK: GET the gateway's readiness endpoint (/ready: discovery works and some engine
 * group can serve) and exit 0 when it answers 200, 1 otherwise. The image's default command is the
 * gateway; a container running another service sets EXPERTMESH_HEALTHCHECK_URL or runs with
 * --no-healthcheck (Kubernetes ignores HEALTHCHECK and uses the chart's probes).
 */
const url = process.env.EXPERTMESH_HEALTHCHECK_URL || `http://127.0.0.1:${process.env.GATEWAY_PORT || "8080"}/ready`;
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4_000) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
