/**
 * The reach rows of bench:check (issue 12): how far the exhaustive checker gets on the whole
 * protocol of each era, and how fast it finds known bugs there. Every row gives executions,
 * whether the exploration completed, wall time and the process's peak RSS. TDPLAB_REACH_S sets
 * the budget per row (default 60 s); a row cut by it says so.
 */
import { runCheck } from "../src/scenarios/check.js";
import { resolveScenario, resolveVariant, runConfigFor } from "../src/scenarios/resolve.js";

export interface ReachRow {
  readonly scenario: string;
  readonly params: Readonly<Record<string, number>>;
  readonly variant: string | null;
  readonly verdict: string;
  readonly complete: boolean;
  readonly executions: number;
  readonly ms: number;
  readonly peakRssMb: number;
}

const BUDGET_MS = Number(process.env.TDPLAB_REACH_S ?? 60) * 1000;

async function row(
  scenarioName: string,
  params: Record<string, number>,
  variantName: string | null,
): Promise<ReachRow> {
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
    explore: { strategy: "dpor", stopOnFirstViolation: true, timeLimitMs: BUDGET_MS },
    shrink: false,
  });
  return {
    scenario: scenarioName,
    params,
    variant: variantName,
    verdict: out.status === "violation" ? "unsafe" : out.status === "ok" ? "safe" : "inconclusive",
    complete: out.explore.complete,
    executions: out.explore.executions,
    ms: Math.round(performance.now() - t0),
    peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
  };
}

export async function reachRows(onRow?: (r: ReachRow) => void): Promise<ReachRow[]> {
  const plan: [string, Record<string, number>, string | null][] = [
    ["protocol-v5.18", { vcpus: 1, walkers: 0 }, null],
    ["protocol-v5.18", { vcpus: 1, walkers: 1 }, null],
    ["protocol-v5.18", {}, null],
    ["protocol-v6.4", {}, null],
    ["protocol-v6.6", {}, null],
    ["protocol-v5.18", {}, "put-root-dec-not-one-set-zero"],
    ["protocol-v5.18", {}, "invalidate-requeues-invalid-roots"],
    ["protocol-v6.4", {}, "uninit-invalidate-unprotected"],
  ];
  const rows: ReachRow[] = [];
  for (const [s, p, v] of plan) {
    const r = await row(s, p, v);
    rows.push(r);
    onRow?.(r);
  }
  return rows;
}

export function formatReach(rows: readonly ReachRow[]): string {
  const lines = [
    "scenario         params               variant                             verdict       complete  executions      time  peak RSS",
  ];
  for (const r of rows) {
    const p = Object.entries(r.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(",");
    lines.push(
      `${r.scenario.padEnd(16)} ${(p || "defaults").padEnd(20)} ${(r.variant ?? "as-merged").padEnd(35)} ${r.verdict.padEnd(13)} ${String(r.complete).padEnd(9)} ${String(r.executions).padStart(10)} ${`${(r.ms / 1000).toFixed(1)} s`.padStart(9)} ${`${r.peakRssMb} MB`.padStart(9)}`,
    );
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const rows = await reachRows((r) => console.error(`measured ${r.scenario} ${r.variant ?? ""}`));
  if (process.argv.includes("--json")) console.log(JSON.stringify({ budgetMs: BUDGET_MS, rows }));
  else console.log(formatReach(rows));
  process.exit(0);
}
