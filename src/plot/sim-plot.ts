import { formatDuration, formatSetting, formatSize, type SimPlan } from "../scenarios/sim/params.js";
import type { SimRecord } from "../scenarios/sim/run-plan.js";
import type { LinePlotSpec, LineSeries, XAxis } from "./spec.js";

/**
 * The line plot of a simulation: x is the swept key (numeric for sizes and numbers, categories for
 * enums, bools and grace-period ranges), y is one metric, one series per run label. The title names
 * the scenario and the metric; the subtitle lists every setting that stayed fixed.
 */

/** The settings a plan holds fixed, as `key=value` texts (sweep key excluded). */
export function fixedSettings(plan: SimPlan): string[] {
  const s = plan.scenario;
  const out = Object.entries(plan.params)
    .filter(([k]) => k !== plan.sweep?.key)
    .map(([k, v]) => `${k}=${formatSetting(s, k, v)}`);
  for (const [k, v] of Object.entries(plan.costs)) {
    if (k !== plan.sweep?.key && v !== undefined) out.push(`${k}=${formatSetting(s, k, v as never)}`);
  }
  if (plan.kernelFilter !== null) out.push(`kernel=${plan.kernelFilter}`);
  return out;
}

export function simPlotSpec(plan: SimPlan, records: readonly SimRecord[], metric: string): LinePlotSpec {
  const { scenario, sweep } = plan;
  const unit = scenario.metrics.find((m) => m.key === metric)?.unit;
  const spec = sweep === null ? undefined : scenario.params.find((p) => p.name === sweep.key);
  const numeric = sweep?.values.every((v) => typeof v === "number") === true && spec?.kind !== "enum";
  const xOf = (point: number): number | string =>
    sweep === null ? "defaults" : numeric ? (sweep.values[point] as number) : plan.points[point].label!;
  const x: XAxis = numeric
    ? {
        kind: "numeric",
        values: plan.points.map((_, i) => xOf(i) as number),
        format: spec?.kind === "size" ? formatSize : spec === undefined ? formatDuration : undefined,
        binary: spec?.kind === "size",
      }
    : { kind: "category", values: plan.points.map((_, i) => String(xOf(i))) };
  const labels = [...new Set(records.map((r) => r.run.label))];
  const series: LineSeries[] = labels.map((label) => ({
    name: label,
    points: records
      .filter((r) => r.run.label === label)
      .map((r) => {
        const y = r.run.metrics[metric];
        return { x: xOf(r.point), y: y === undefined || y === null || !Number.isFinite(y) ? null : y };
      })
      // A numeric sweep given out of order is still drawn left to right.
      .sort((a, b) => (numeric ? (a.x as number) - (b.x as number) : 0)),
  }));
  const fixed = fixedSettings(plan);
  return {
    title: `${scenario.name}: ${metric}${sweep === null ? "" : ` vs ${sweep.key}`}`,
    subtitle: fixed.length > 0 ? fixed.join("  ") : undefined,
    xLabel: sweep === null ? "(no sweep)" : sweep.key,
    yLabel: unit === undefined ? metric : `${metric} [${unit}]`,
    x,
    series,
  };
}
