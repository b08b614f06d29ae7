import type { Command } from "@commander-js/extra-typings";
import { type CostModel, DEFAULT_COSTS } from "../../engine/sim/cost-model.js";
import {
  type DefunctRootZapKernel,
  type DefunctRootZapParams,
  type DefunctRootZapRun,
  defunctRootZap,
  defunctRootZapLeaves,
} from "../../scenarios/sim/defunct-root-zap.js";
import type { SetExit } from "../commands.js";
import { UsageError } from "../exit-codes.js";
import type { Out } from "../io.js";
import { collect } from "../options.js";
import { formatTable } from "../table.js";

/** Timed scenarios `tdplab simulate` knows. */
const SCENARIOS = ["defunct-root-zap"] as const;

/** Trees are materialised (one object per SPTE word), so their size is bounded. */
const MAX_LEAVES = 2 ** 16;

type ScenarioKey = "ptesPerTable" | "rootLevel" | "fill" | "cpus";
type NumericCost = { [K in keyof CostModel]: CostModel[K] extends number ? K : never }[keyof CostModel];

const SCENARIO_KEYS: Readonly<Record<ScenarioKey, { allowed: string; ok: (v: number) => boolean }>> = {
  ptesPerTable: { allowed: "an integer 2..64", ok: (v) => Number.isInteger(v) && v >= 2 && v <= 64 },
  rootLevel: { allowed: "4 or 5", ok: (v) => v === 4 || v === 5 },
  fill: { allowed: "a number 0..1", ok: (v) => v >= 0 && v <= 1 },
  cpus: { allowed: "an integer 1..256", ok: (v) => Number.isInteger(v) && v >= 1 && v <= 256 },
};
const COST_KEYS = (Object.keys(DEFAULT_COSTS) as (keyof CostModel)[]).filter(
  (k): k is NumericCost => typeof DEFAULT_COSTS[k] === "number",
);
const ALL_KEYS = [...Object.keys(SCENARIO_KEYS), ...COST_KEYS];

interface Setting {
  readonly scenario: Required<Omit<DefunctRootZapParams, "kernel">>;
  readonly costs: Partial<Record<NumericCost, number>>;
}

function isScenarioKey(k: string): k is ScenarioKey {
  return Object.hasOwn(SCENARIO_KEYS, k);
}
function isCostKey(k: string): k is NumericCost {
  return (COST_KEYS as string[]).includes(k);
}

/** Check `key` and parse `raw` for it; a UsageError names the key and what it accepts. */
function parseValue(flag: string, key: string, raw: string): number {
  if (!isScenarioKey(key) && !isCostKey(key)) {
    throw new UsageError(`${flag}: unknown key '${key}'; allowed keys: ${ALL_KEYS.join(", ")}`);
  }
  const v = raw.trim() === "" ? Number.NaN : Number(raw);
  const rule = isScenarioKey(key)
    ? SCENARIO_KEYS[key]
    : key === "tickNs"
      ? { allowed: "a number of nanoseconds > 0", ok: (x: number) => Number.isFinite(x) && x > 0 }
      : { allowed: "a number of nanoseconds >= 0", ok: (x: number) => Number.isFinite(x) && x >= 0 };
  if (!rule.ok(v)) throw new UsageError(`${flag}: ${key} must be ${rule.allowed}, not '${raw}'`);
  return v;
}

function splitPair(flag: string, text: string): [string, string] {
  const i = text.indexOf("=");
  if (i <= 0)
    throw new UsageError(`${flag} takes key=value, not '${text}'; allowed keys: ${ALL_KEYS.join(", ")}`);
  return [text.slice(0, i), text.slice(i + 1)];
}

function withValue(s: Setting, key: string, v: number): Setting {
  if (isScenarioKey(key)) return { ...s, scenario: { ...s.scenario, [key]: v } };
  return { ...s, costs: { ...s.costs, [key]: v } };
}

/** Refuse trees that would not fit materialised. */
function checkSize(s: Setting): void {
  const leaves = defunctRootZapLeaves(s.scenario);
  if (leaves > MAX_LEAVES) {
    const { ptesPerTable: p, rootLevel: l, fill } = s.scenario;
    throw new UsageError(
      `ptesPerTable=${p} rootLevel=${l} fill=${fill} populates ${leaves} leaves; at most ${MAX_LEAVES} ` +
        "(2^16) can be materialised (64 TiB needs the compressed page-table representation, not built yet)",
    );
  }
}

const HELP = `
Scenarios:
  defunct-root-zap   seed 002: a vCPU drops the last reference to a populated root; v5.17 zaps it
                     synchronously (run "sync"), v5.18 hands the zap to a worker (run "async")

Keys for --set and --sweep:
  ptesPerTable  entries per page table, 2..64 (default 8; the kernel's is 512)
  rootLevel     4 or 5 (default 4)
  fill          fraction of the 4K leaves populated, from gfn 0 upwards, 0..1 (default 1)
  cpus          host CPUs of the simulated machine (default 4)
  <cost field>  any numeric cost-model price in ns: ${COST_KEYS.join(", ")}

Sizes are materialised: every page table and SPTE is a model object, so a run is limited to
${MAX_LEAVES} (2^16) populated leaves. 64 TiB (2^34 leaves) needs the compressed page-table
representation, which is not built yet; larger sizes are refused (exit 2).

Examples:
  tdplab simulate defunct-root-zap --sweep ptesPerTable=2,4,8,16
  tdplab simulate defunct-root-zap --set ptesPerTable=8 --set tlbFlushNs=0 --json`;

const KERNELS: readonly { label: "sync" | "async"; kernel: DefunctRootZapKernel }[] = [
  { label: "sync", kernel: "v5.17" },
  { label: "async", kernel: "v5.18" },
];

/** `tdplab simulate`: run a timed scenario in virtual time on the simulator, both eras. */
export function registerSimulate(program: Command, out: Out, _setExit: SetExit): void {
  program
    .command("simulate")
    .description("run a timed scenario on the discrete-event simulator (virtual time, both eras)")
    .argument("<scenario>", `timed scenario (${SCENARIOS.join(", ")})`)
    .option(
      "--set <key=value>",
      "set a scenario parameter or a cost-model price (repeatable)",
      collect,
      [] as string[],
    )
    .option("--sweep <key=a,b,c>", "run once per value of one key")
    .option("--json", "print one JSON document on stdout")
    .addHelpText("after", HELP)
    .action((scenario, o) => {
      if (!(SCENARIOS as readonly string[]).includes(scenario)) {
        throw new UsageError(`unknown scenario '${scenario}'; known: ${SCENARIOS.join(", ")}`);
      }
      let base: Setting = { scenario: { ptesPerTable: 8, rootLevel: 4, fill: 1, cpus: 4 }, costs: {} };
      for (const kv of o.set) {
        const [k, raw] = splitPair("--set", kv);
        base = withValue(base, k, parseValue("--set", k, raw));
      }
      let sweep: { key: string; values: number[] } | null = null;
      if (o.sweep !== undefined) {
        const [k, raw] = splitPair("--sweep", o.sweep);
        sweep = { key: k, values: raw.split(",").map((r) => parseValue("--sweep", k, r)) };
      }
      const settings = sweep === null ? [base] : sweep.values.map((v) => withValue(base, sweep.key, v));
      settings.forEach(checkSize);

      const runs: (DefunctRootZapRun & {
        params: DefunctRootZapRun["params"] & { costs: Setting["costs"] };
      })[] = [];
      const total = settings.length * KERNELS.length;
      for (const s of settings) {
        for (const { kernel } of KERNELS) {
          const what =
            sweep === null
              ? ""
              : ` ${sweep.key}=${s.scenario[sweep.key as ScenarioKey] ?? s.costs[sweep.key as NumericCost]}`;
          out.progress(`simulate: run ${runs.length + 1}/${total}:${what} ${kernel}`);
          const r = defunctRootZap({ ...s.scenario, kernel }, s.costs);
          runs.push({
            label: r.label,
            kernel: r.kernel,
            params: { ...r.params, costs: s.costs },
            metrics: r.metrics,
          });
        }
      }
      out.endProgress();

      if (o.json) {
        const params = { ...base.scenario, costs: base.costs, ...(sweep === null ? {} : { sweep }) };
        out.data(JSON.stringify({ schemaVersion: 1, scenario, params, runs }, null, 2));
        return;
      }
      const swept = sweep?.key;
      const header = ["label", "kernel", ...(swept ? [swept] : []), "vcpuBlockedMs", "workerZapMs", "leaves"];
      const rows = runs.map((r) => [
        r.label,
        r.kernel,
        ...(swept
          ? [String(isScenarioKey(swept) ? r.params[swept] : r.params.costs[swept as NumericCost])]
          : []),
        r.metrics.vcpuBlockedMs.toFixed(6),
        r.metrics.workerZapMs === null ? "-" : r.metrics.workerZapMs.toFixed(6),
        String(r.metrics.leaves),
      ]);
      out.data(formatTable(header, rows));
    });
}
