import { createMetricsRegistry, Histogram } from "@expertmesh/common";
import { describe, expect, it } from "vitest";
import { bucketsOf, parsePromText, quantileBetween } from "./prom-text.ts";

describe("the Prometheus text the dashboard reads", () => {
  it("reads samples with their labels, escapes included", () => {
    const samples = parsePromText(
      ["# HELP x_total a counter", "# TYPE x_total counter", 'x_total{route="/v1/chat",msg="a \\"b\\" c"} 3', "up 1", ""].join("\n"),
    );
    expect(samples).toEqual([
      { name: "x_total", labels: { route: "/v1/chat", msg: 'a "b" c' }, value: 3 },
      { name: "up", labels: {}, value: 1 },
    ]);
  });

  it("gives the quantiles of what was observed between two readings of a real histogram, summed over labels", async () => {
    const registry = createMetricsRegistry("prom-text-test");
    const h = new Histogram({ name: "lat_seconds", help: "h", labelNames: ["model"], buckets: [0.1, 0.25, 1], registers: [registry] });
    h.observe({ model: "a" }, 5); // before the first reading: not in the window
    const before = bucketsOf(parsePromText(await registry.metrics()), "lat_seconds");
    for (let i = 0; i < 50; i++) h.observe({ model: i % 2 ? "a" : "b" }, 0.2);
    for (let i = 0; i < 50; i++) h.observe({ model: "a" }, 0.5);
    const after = bucketsOf(parsePromText(await registry.metrics()), "lat_seconds");
    // Half the window's 100 observations are in (0.1, 0.25]: the median is that bucket's top (linear inside it).
    expect(quantileBetween(before, after, 0.5)).toBeCloseTo(0.25, 9);
    expect(quantileBetween(before, after, 0.25)).toBeCloseTo(0.1 + (0.25 - 0.1) * (25 / 50), 9);
    expect(quantileBetween(before, after, 0.99)).toBeCloseTo(0.25 + (1 - 0.25) * (49 / 50), 9);
    expect(quantileBetween(after, after, 0.5)).toBeNull();
  });

  it("answers the highest finite bound for a quantile in the +Inf bucket", () => {
    const before = new Map([
      [1, 0],
      [Number.POSITIVE_INFINITY, 0],
    ]);
    const after = new Map([
      [1, 1],
      [Number.POSITIVE_INFINITY, 10],
    ]);
    expect(quantileBetween(before, after, 0.99)).toBe(1);
  });
});
