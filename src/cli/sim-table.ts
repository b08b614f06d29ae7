import { humanSize, type SimPlan } from "../scenarios/sim/params.js";
import type { SimRecord } from "../scenarios/sim/run-plan.js";
import type { SimScenario } from "../scenarios/sim/types.js";
import { formatTable } from "./table.js";

/** A metric value for a table: "-" when absent, sizes for bytes, whole numbers as is, else 4 significant digits. */
export function formatMetric(v: number | null | undefined, unit: string): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "-";
  if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
  if (unit === "bytes") return humanSize(v);
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000) return v.toFixed(1);
  if (a >= 1) return v.toFixed(3);
  return String(Number(v.toPrecision(4)));
}

/** Metric keys in table order: the headline first, then the rest as the scenario declares them. */
export function metricOrder(s: SimScenario): string[] {
  return [s.headline, ...s.metrics.map((m) => m.key).filter((k) => k !== s.headline)];
}

/** One row per run: label, kernel, the swept value (with a sweep other than kernel) and every metric. */
export function simTable(
  plan: SimPlan,
  records: readonly SimRecord[],
  o: { markdown?: boolean; metrics?: readonly string[] } = {},
): string {
  const s = plan.scenario;
  const keys = o.metrics ?? metricOrder(s);
  const units = new Map(s.metrics.map((m) => [m.key, m.unit]));
  // A kernel sweep is already the kernel column.
  const swept = plan.sweep !== null && plan.sweep.key !== "kernel";
  const header = ["label", "kernel", ...(swept ? [plan.sweep!.key] : []), ...keys];
  const rows = records.map((r) => [
    r.run.label,
    r.run.kernel,
    ...(swept ? [plan.points[r.point].label ?? ""] : []),
    ...keys.map((k) => formatMetric(r.run.metrics[k], units.get(k) ?? "")),
  ]);
  return formatTable(header, rows, o.markdown === true);
}

/** "12.3%" for a busy fraction. */
function percent(f: number): string {
  return `${(100 * f).toFixed(1)}%`;
}

/**
 * One simulation's CPUs in a line: consecutive CPUs of the same rounded occupancy share an entry
 * ("cpu0 1.2%, cpu1-62 100.0%, cpu63 3.4%"), so that 65 CPUs still fit.
 */
export function occupancyText(occ: readonly number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < occ.length; ) {
    const p = percent(occ[i]);
    let j = i;
    while (j + 1 < occ.length && percent(occ[j + 1]) === p) j++;
    parts.push(`cpu${i}${j > i ? `-${j}` : ""} ${p}`);
    i = j + 1;
  }
  return parts.join(", ");
}

/**
 * Host-CPU occupancy of every run that has simulator results, one line per run (its simulations
 * separated by " | "), under a heading; "" when no run has any.
 */
export function occupancyLines(plan: SimPlan, records: readonly SimRecord[]): string {
  const swept = plan.sweep !== null && plan.sweep.key !== "kernel";
  const lines: string[] = [];
  for (const r of records) {
    const results = r.run.results ?? [];
    if (results.length === 0) continue;
    const label = `${r.run.label} ${r.run.kernel}${swept ? ` ${plan.sweep!.key}=${plan.points[r.point].label ?? ""}` : ""}`;
    lines.push(
      `  ${label}: ${results.map((x) => occupancyText(x.perCpu.map((c) => c.occupancy))).join(" | ")}`,
    );
  }
  return lines.length === 0
    ? ""
    : ["host-CPU occupancy (busy fraction per CPU, spinning included):", ...lines].join("\n");
}
