/**
 * The reach rows of bench:check (issue 12): how far the exhaustive checker gets on the whole
 * protocol of each era, and how fast it finds known bugs there. Each row is measured twice:
 * "after" is what `tdplab check` does by default (the portfolio: DPOR with the primitives'
 * declared commutativity and completions, and sampled runs beside it); "before" is plain DPOR
 * with every declaration ignored (`--strategy dpor --plain-dependence`). Every row gives
 * executions, sampled runs, sleep-set-blocked runs, reorderings skipped as infeasible, whether the
 * exploration completed, wall time and the process's peak RSS. TDPLAB_REACH_S sets the budget per
 * run (default 30 s); a run cut by it says so.
 */
import type { Strategy } from "../src/engine/explore/types.js";
import { runCheck } from "../src/scenarios/check.js";
import { resolveScenario, resolveVariant, runConfigFor } from "../src/scenarios/resolve.js";

export interface ReachRun {
  readonly verdict: string;
  readonly complete: boolean;
  readonly executions: number;
  readonly sampled: number;
  readonly blocked: number;
  /** Reorderings dropped as infeasible before any replay (completions, blocked enabledness). */
  readonly skipped: number;
  readonly ms: number;
  readonly peakRssMb: number;
}

export interface ReachRow {
  readonly scenario: string;
  readonly params: Readonly<Record<string, number>>;
  readonly variant: string | null;
  readonly before: ReachRun;
  readonly after: ReachRun;
}

const BUDGET_MS = Number(process.env.TDPLAB_REACH_S ?? 30) * 1000;

async function measure(
  scenarioName: string,
  params: Record<string, number>,
  variantName: string | null,
  strategy: Strategy,
  plainDependence: boolean,
): Promise<ReachRun> {
  const scenario = await resolveScenario(scenarioName);
  const variant = await resolveVariant(variantName);
  const config = runConfigFor(scenario, variant, { params });
  const t0 = performance.now();
  const out = runCheck({
    scenario,
    variant,
    variantRef: variantName,
    config,
    featureFlags: [],
    machineFlags: {},
    explore: { strategy, seed: 0n, plainDependence, stopOnFirstViolation: true, timeLimitMs: BUDGET_MS },
    shrink: false,
  });
  const e = out.explore;
  return {
    verdict: out.status === "violation" ? "unsafe" : out.status === "ok" ? "safe" : "inconclusive",
    complete: e.complete,
    executions: e.executions,
    sampled: e.stats.sampledRuns,
    blocked: e.blockedExecutions ?? 0,
    skipped: e.stats.infeasibleRaces,
    ms: Math.round(performance.now() - t0),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

export const REACH_PLAN: readonly [string, Record<string, number>, string | null][] = [
  ["protocol-v5.18", { vcpus: 1, walkers: 0, fastZaps: 0 }, null],
  ["protocol-v5.18", { vcpus: 1, walkers: 0, fastZaps: 1 }, null],
  ["protocol-v5.18", { vcpus: 1, walkers: 1, fastZaps: 0 }, null],
  ["protocol-v5.18", {}, null],
  ["protocol-v6.4", {}, null],
  ["protocol-v6.6", {}, null],
  ["rmap-aging", {}, null],
  ["protocol-v5.18", {}, "put-root-dec-not-one-set-zero"],
  ["protocol-v5.18", {}, "invalidate-requeues-invalid-roots"],
  ["protocol-v6.4", {}, "uninit-invalidate-unprotected"],
  ["rmap-aging", {}, "rmap-unlock-readonly-writes-zero"],
  ["tlb-root-reuse", {}, null],
  ["tlb-root-reuse", {}, "skip-root-load-flush"],
];

export async function reachRows(onRow?: (r: ReachRow) => void): Promise<ReachRow[]> {
  const rows: ReachRow[] = [];
  for (const [s, p, v] of REACH_PLAN) {
    const before = await measure(s, p, v, "dpor", true);
    const after = await measure(s, p, v, "portfolio", false);
    const r = { scenario: s, params: p, variant: v, before, after };
    rows.push(r);
    onRow?.(r);
  }
  return rows;
}

function cell(r: ReachRun): string {
  const sampled = r.sampled > 0 ? `+${r.sampled}` : "";
  return `${r.verdict.padEnd(12)} ${(r.complete ? "yes" : "no").padEnd(8)} ${String(r.executions).padStart(8)} ${sampled.padStart(6)} ${String(r.blocked).padStart(7)} ${String(r.skipped).padStart(8)} ${`${(r.ms / 1000).toFixed(1)} s`.padStart(7)} ${`${r.peakRssMb} MB`.padStart(8)}`;
}

export function formatReach(rows: readonly ReachRow[]): string {
  const head = "verdict      complete   execs sampled blocked  skipped    time      RSS";
  const lines = [`${"scenario".padEnd(15)} ${"params".padEnd(28)} ${"variant".padEnd(33)} run     ${head}`];
  for (const r of rows) {
    const p = Object.entries(r.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    const left = `${r.scenario.padEnd(15)} ${(p || "defaults").padEnd(28)} ${(r.variant ?? "as-merged").padEnd(33)}`;
    lines.push(`${left} before  ${cell(r.before)}`);
    lines.push(`${" ".repeat(left.length)} after   ${cell(r.after)}`);
  }
  lines.push(
    `(before: dpor --plain-dependence; after: the default portfolio. Budget ${BUDGET_MS / 1000} s per run; peak RSS is the process's so far.)`,
  );
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await reachRows((r) => console.error(`measured ${r.scenario} ${r.variant ?? ""}`));
  if (process.argv.includes("--json")) console.log(JSON.stringify({ budgetMs: BUDGET_MS, rows }));
  else console.log(formatReach(rows));
  process.exit(0);
}
