import type { SimMetricSpec } from "./types.js";

/**
 * Metric declarations several timed scenarios share, so the same figure is named and explained
 * the same way in every table and JSON document.
 */

/** `<stem>MedianUs`, `<stem>P99Us`, `<stem>MaxUs` of one latency, summarised by summariseLatencies(). */
export function latencyMetrics(stem: string, what: string): SimMetricSpec[] {
  return [
    { key: `${stem}MedianUs`, unit: "us", doc: `median ${what}` },
    { key: `${stem}P99Us`, unit: "us", doc: "its 99th percentile" },
    { key: `${stem}MaxUs`, unit: "us", doc: "its maximum" },
  ];
}

/** When the run ended and how many events it took. */
export const RUN_END_METRICS: readonly SimMetricSpec[] = [
  { key: "totalMs", unit: "ms", doc: "end of the run" },
  { key: "events", unit: "count", doc: "simulated events" },
];
