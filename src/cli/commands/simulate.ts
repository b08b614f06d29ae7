import type { Command } from "@commander-js/extra-typings";
import type { SimCpuStats } from "../../engine/sim/occupancy.js";
import type { RcuStall } from "../../engine/sim/simulator.js";
import { plotFormatOf, writeLinePlot } from "../../plot/index.js";
import { fixedSettings, simPlotSpec } from "../../plot/sim-plot.js";
import { isBuiltinVariantName } from "../../scenarios/content-hash.js";
import { overridesOf, type Variant } from "../../scenarios/define.js";
import { ResolveError, resolveVariant } from "../../scenarios/resolve.js";
import { featureText, type SimFeatures, simFeatures } from "../../scenarios/sim/features.js";
import {
  COST_KEYS,
  formatSetting,
  formatSize,
  planSimulation,
  SimParamError,
  type SimPlan,
} from "../../scenarios/sim/params.js";
import { findSimScenario, SIM_SCENARIOS } from "../../scenarios/sim/registry.js";
import { type PlanOutcome, runPlan, type SimRecord } from "../../scenarios/sim/run-plan.js";
import type { SimParamSpec, SimScenario } from "../../scenarios/sim/types.js";
import { TOOL_VERSION } from "../../version.js";
import type { SetExit } from "../commands.js";
import { EXIT, UsageError } from "../exit-codes.js";
import type { Out } from "../io.js";
import { collect, intFlag, seedFlag } from "../options.js";
import { progressBar } from "../progress-bar.js";
import { occupancyLines, simTable } from "../sim-table.js";
import { importsStall } from "../watched/import-watched.js";
import { isKilledSimulation, runPlanWatched } from "../watched/simulate-watched.js";
import { type TimelineRun, writeSimArtifact } from "./simulate-artifacts.js";

/** Version of the --json document (bumped when a field changes meaning). */
export const SIMULATE_SCHEMA_VERSION = 1;

/** Greedy word wrap with a hanging indent. */
function wrap(text: string, indent: number, width = 100): string {
  const lead = /^ */.exec(text)?.[0] ?? "";
  const out: string[] = [];
  let line = lead;
  for (const w of text.trimStart().split(" ")) {
    if (line.trim() !== "" && line.length + 1 + w.length > width) {
      out.push(line);
      line = " ".repeat(indent) + w;
    } else line = line.trim() === "" ? line + w : `${line} ${w}`;
  }
  out.push(line);
  return out.join("\n");
}

/** What a parameter takes, briefly: "size 2MiB..1GiB", "int 4..5", "none|full", "true|false". */
function shortAllowed(p: SimParamSpec): string {
  const f = (v: number) => (p.kind === "size" ? formatSize(v) : String(v));
  const range =
    p.min !== undefined && p.max !== undefined
      ? ` ${f(p.min)}..${f(p.max)}`
      : p.min !== undefined
        ? ` >= ${f(p.min)}`
        : p.max !== undefined
          ? ` <= ${f(p.max)}`
          : "";
  if (p.kind === "enum") return (p.values ?? []).join("|");
  if (p.kind === "bool") return "true|false";
  return `${p.kind}${range}`;
}

function scenarioHelp(scenarios: readonly SimScenario[]): string {
  if (scenarios.length === 0) return "\nScenarios: none registered yet.";
  const lines = ["", "Scenarios (parameter=default [accepted values] meaning; metrics, the headline first):"];
  for (const s of scenarios) {
    lines.push(wrap(`  ${s.name}${s.thread ? ` (seed ${s.thread})` : ""}: ${s.summary}`, 6));
    for (const p of s.params) {
      lines.push(
        wrap(`    ${p.name}=${formatSetting(s, p.name, p.default)} [${shortAllowed(p)}] ${p.doc}`, 8),
      );
    }
    const metrics = [s.headline, ...s.metrics.map((m) => m.key).filter((k) => k !== s.headline)];
    lines.push(wrap(`    metrics: ${metrics.join(", ")}`, 8));
  }
  return lines.join("\n");
}

const HELP = `
Settings:
  --set key=value       a scenario parameter or a cost-model price. Sizes take binary suffixes
                        (1GiB, 64TiB); prices are ns or take a unit (73us, 3ms); rcuGracePeriodNs
                        also takes a range (3ms..30ms).
  --sweep key=a,b,c     run once per value; a..b doubles from a to b for int and size parameters
  --kernel V            keep the runs on kernel V (or set the scenario's kernel parameter)

Output: a table on stdout (or one JSON document with --json); --plot FILE.svg|FILE.png draws the
headline metric (or --plot-metric KEY) against the swept key, one line per run label; --perfetto
writes the runs' timelines as Chrome Trace Event JSON (ui.perfetto.dev), --trace as the explorer's
sim trace.
Exit codes: 0 done, 2 bad input, 4 a loop in your variant module that never reaches a primitive,
70 internal error, 130 interrupted (within a second, even inside a long point; the points that
finished are printed).

Examples:
  tdplab simulate defunct-root-zap
  tdplab simulate defunct-root-zap --sweep guestSize=1GiB..64TiB --plot zap.svg
  tdplab simulate defunct-root-zap --kernel v5.18 --set spteWriteNs=2 --json`;

/** The --json document. */
export interface SimulateDoc {
  readonly schemaVersion: number;
  readonly tool: string;
  readonly scenario: string;
  readonly thread: string | null;
  readonly params: Readonly<Record<string, unknown>>;
  readonly costs: Readonly<Record<string, unknown>>;
  readonly sweep: { readonly key: string; readonly values: readonly unknown[] } | null;
  readonly kernel: string | null;
  /** Features set on top of every run's preset (--variant, --feature), or null. */
  readonly features: SimFeatures | null;
  readonly seed: number | null;
  readonly interrupted: boolean;
  readonly runs: readonly {
    readonly label: string;
    readonly kernel: string;
    readonly params: Readonly<Record<string, unknown>>;
    readonly costs: Readonly<Record<string, unknown>>;
    readonly metrics: Readonly<Record<string, number | null>>;
    /** RCU CPU stall warnings of the run's simulations (virtual times in ns). */
    readonly rcuStalls: readonly RcuStall[];
    /**
     * Host-CPU occupancy, one list per simulation of the run (one entry per CPU): busyNs (a task on
     * it, executing or spinning, or a switch), execNs (executing steps) and occupancy (busyNs over
     * the simulation's virtual time).
     */
    readonly perCpu: readonly (readonly SimCpuStats[])[];
  }[];
}

export function simulateDoc(
  plan: SimPlan,
  outcome: PlanOutcome,
  seed: number | null,
  features: SimFeatures | null = null,
): SimulateDoc {
  return {
    schemaVersion: SIMULATE_SCHEMA_VERSION,
    tool: `tdplab ${TOOL_VERSION}`,
    scenario: plan.scenario.name,
    thread: plan.scenario.thread,
    params: plan.params,
    costs: plan.costs,
    sweep: plan.sweep === null ? null : { key: plan.sweep.key, values: plan.sweep.values },
    kernel: plan.kernelFilter,
    features,
    seed,
    interrupted: outcome.interrupted,
    runs: outcome.records.map((r) => ({
      label: r.run.label,
      kernel: r.run.kernel,
      params: r.run.params,
      costs: plan.points[r.point].costs,
      metrics: r.run.metrics,
      rcuStalls: (r.run.results ?? []).flatMap((x) => x.rcuStalls),
      perCpu: (r.run.results ?? []).map((x) => x.perCpu),
    })),
  };
}

/** Label of a record in a trace file: the run label, plus the swept value in a sweep. */
function traceLabel(plan: SimPlan, r: SimRecord): string {
  return plan.sweep === null ? r.run.label : `${r.run.label} ${plan.sweep.key}=${plan.points[r.point].label}`;
}

function timelineRuns(plan: SimPlan, records: readonly SimRecord[]): TimelineRun[] {
  return records.flatMap((r) => {
    const results = r.run.results ?? [];
    return results.map((result, i) => ({
      label: results.length === 1 ? traceLabel(plan, r) : `${traceLabel(plan, r)} #${i}`,
      kernel: r.run.kernel,
      result,
    }));
  });
}

/** The variant `simulate --variant` names: its overrides and features apply in every run. */
async function variantFor(ref: string | undefined): Promise<Variant | null> {
  if (ref === undefined) return null;
  let v: Variant | null;
  try {
    v = await resolveVariant(ref);
  } catch (e) {
    if (e instanceof ResolveError) throw new UsageError(e.message);
    throw e;
  }
  // resolveVariant() has refused unknown overrides, features and invariants already.
  return v;
}

function seedNumber(text: string | undefined): number | null {
  const s = seedFlag(text);
  if (s === undefined) return null;
  if (s > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new UsageError(`--seed: the simulator takes seeds up to 2^53-1, not '${text}'`);
  }
  return Number(s);
}

/** `tdplab simulate`: run a timed scenario (or a sweep of it) on the discrete-event simulator. */
export function registerSimulate(program: Command, out: Out, setExit: SetExit): void {
  program
    .command("simulate")
    .description("run a timed scenario on the discrete-event simulator (virtual time)")
    .argument("[scenario]", "timed scenario (see below)")
    .option("--kernel <version>", "only the runs on this kernel (or the scenario's kernel parameter)")
    .option(
      "--set <key=value>",
      "set a parameter or a cost-model price (repeatable)",
      collect,
      [] as string[],
    )
    .option("--sweep <key=a,b,c>", "run once per value of one key", collect, [] as string[])
    .option("--seed <n>", "seed of the simulator's random draws (decimal or 0x-hex)")
    .option(
      "--variant <name|path>",
      "design under test: a built-in variant or a module, as for check (its overrides and features, in every run)",
    )
    .option(
      "--feature <NAME=on|off>",
      "override one feature on top of every run's kernel preset (repeatable; zapPasses=single|two-pass|four-pass)",
      collect,
      [] as string[],
    )
    .option("--json", "print one JSON document on stdout")
    .option(
      "--step-timeout <ms>",
      "a variant module's code running this long without reaching a primitive is an error in your module",
      "5000",
    )
    .option("--plot <file>", "draw the headline metric against the swept key (.svg or .png)")
    .option("--plot-metric <key>", "the metric --plot draws")
    .option("--perfetto <file>", "write the runs' timelines as Chrome Trace Event JSON (ui.perfetto.dev)")
    .option("--trace <file>", "write the runs' timelines as a trace for the explorer")
    .addHelpText(
      "after",
      () =>
        `${HELP}\n\n${wrap(`Cost-model keys: ${[...COST_KEYS, "rcuGracePeriodNs"].join(", ")}`, 2)}\n${scenarioHelp(SIM_SCENARIOS)}`,
    )
    .action(async (name, o) => {
      const known = SIM_SCENARIOS.map((s) => s.name).join(", ") || "(none registered)";
      if (name === undefined) throw new UsageError(`simulate: name a scenario; known: ${known}`);
      const scenario = findSimScenario(name, SIM_SCENARIOS);
      if (scenario === undefined)
        throw new UsageError(`simulate: unknown scenario '${name}'; known: ${known}`);
      let plan: SimPlan;
      try {
        plan = planSimulation(scenario, { set: o.set, sweep: o.sweep, kernel: o.kernel });
      } catch (e) {
        if (e instanceof SimParamError) throw new UsageError(e.message);
        throw e;
      }
      const seed = seedNumber(o.seed);
      const timeline = o.perfetto !== undefined || o.trace !== undefined;
      const loop = await importsStall(
        { variant: o.variant },
        intFlag("--step-timeout", o.stepTimeout, 1) ?? 5000,
        new AbortController().signal,
      );
      if (loop !== null) {
        out.data(`simulate: ${loop.text}`);
        setExit(loop.code);
        return;
      }
      const variant = await variantFor(o.variant);
      let features: SimFeatures | null;
      try {
        features = simFeatures(variant?.features, o.feature);
      } catch (e) {
        if (e instanceof SimParamError) throw new UsageError(e.message);
        throw e;
      }
      if (o.plot !== undefined && plotFormatOf(o.plot) === null) {
        throw new UsageError(`--plot: '${o.plot}' must end in .svg or .png`);
      }
      const metric = o.plotMetric ?? scenario.headline;
      if (!scenario.metrics.some((m) => m.key === metric)) {
        throw new UsageError(
          `--plot-metric: ${scenario.name} has no metric '${metric}'; metrics: ${scenario.metrics.map((m) => m.key).join(", ")}`,
        );
      }

      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.on("SIGINT", onSigint);
      const t0 = performance.now();
      const total = plan.points.length;
      const onPoint = (i: number) => {
        if (total > 1) {
          const at = plan.points[i].label ?? "";
          out.progress(progressBar(i, total, performance.now() - t0, `${plan.sweep?.key}=${at}`), true);
        }
      };
      let ran: Awaited<ReturnType<typeof runPlanWatched>>;
      out.info(
        `simulate: ${scenario.name}, ${total} point${total === 1 ? "" : "s"} (Ctrl-C stops and prints the finished ones)`,
      );
      try {
        ran =
          process.env.TDPLAB_SIMULATE_IN_THREAD === "1"
            ? // Tests whose scenarios exist only in their own module graph (mocked) run here.
              await runPlan(plan, {
                seed: seed ?? undefined,
                timeline,
                overrides: variant === null ? undefined : overridesOf(variant),
                features: features ?? undefined,
                stop: () => controller.signal.aborted,
                onPoint,
              })
            : await runPlanWatched(
                {
                  kind: "simulate",
                  scenario: scenario.name,
                  plan: { set: o.set, sweep: o.sweep, kernel: o.kernel },
                  variant: o.variant ?? null,
                  featureFlags: o.feature,
                  seed: seed ?? undefined,
                  timeline,
                },
                {
                  signal: controller.signal,
                  stepTimeoutMs: intFlag("--step-timeout", o.stepTimeout, 1) ?? 5000,
                  watchTasks: variant !== null && !isBuiltinVariantName(o.variant ?? ""),
                  onPoint,
                },
              );
      } catch (e) {
        if (e instanceof SimParamError) throw new UsageError(e.message);
        throw e;
      } finally {
        process.removeListener("SIGINT", onSigint);
        out.endProgress();
      }
      if (isKilledSimulation(ran)) {
        out.info(ran.text);
        setExit(controller.signal.aborted ? EXIT.interrupted : ran.code);
        return;
      }
      const outcome = ran;
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      if (outcome.interrupted) {
        out.info(
          `simulate: interrupted after ${outcome.completed} of ${total} points (${secs} s); printing those`,
        );
      } else if (total > 1)
        out.info(`simulate: ${total} points, ${outcome.records.length} runs in ${secs} s`);

      if (variant !== null) {
        const ran = new Set(
          outcome.records.flatMap((r) => (r.run.results ?? []).flatMap((x) => x.overridesRan)),
        );
        for (const fn of Object.keys(variant.overrides ?? {}))
          if (!ran.has(fn))
            out.info(
              `warning: the override of ${fn} never ran in these simulations: the numbers say nothing about it`,
            );
      }
      if (o.json) out.data(JSON.stringify(simulateDoc(plan, outcome, seed, features), null, 2));
      else {
        const fixed = fixedSettings(plan);
        if (features !== null) fixed.push(`features: ${featureText(features)}`);
        out.data(
          `${scenario.name}${scenario.thread ? ` (seed ${scenario.thread})` : ""}: ${fixed.join(" ") || "defaults"}`,
        );
        out.data(simTable(plan, outcome.records));
        const occupancy = occupancyLines(plan, outcome.records);
        if (occupancy !== "") out.data(occupancy);
      }
      if (o.plot !== undefined) {
        try {
          writeLinePlot(o.plot, simPlotSpec(plan, outcome.records, metric));
        } catch (e) {
          throw new UsageError(`--plot: cannot write '${o.plot}': ${(e as Error).message}`);
        }
        out.info(`wrote ${o.plot}`);
      }
      for (const [flag, file] of [
        ["--perfetto", o.perfetto],
        ["--trace", o.trace],
      ] as const) {
        if (file === undefined) continue;
        await writeSimArtifact(flag, file, timelineRuns(plan, outcome.records), scenario.name);
        out.info(`wrote ${file}${flag === "--perfetto" ? ": open it in https://ui.perfetto.dev" : ""}`);
      }
      setExit(outcome.interrupted ? EXIT.interrupted : EXIT.ok);
    });
}
