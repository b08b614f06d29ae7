import type { CostModel } from "../../engine/sim/cost-model.js";
import type { SimOptions, SimResult } from "../../engine/sim/simulator.js";
import { MACHINE_OVERRIDES_ENV, type MachineConfig } from "../../kernel/machine.js";
import type { Features } from "../../mmu/features.js";
import { FEATURE_OVERRIDES_ENV } from "../../mmu/testing.js";

/**
 * What every timed scenario (`tdplab simulate NAME`) exports. The CLI, the report generator and the
 * benchmark drive scenarios only through this interface: parameters are declared (so --set/--sweep can
 * check them and print what is allowed), a parameter point produces one or more labelled runs (e.g.
 * "sync" on v5.17 and "async" on v5.18), and each run carries its metrics as plain numbers.
 */

/** A parameter value after parsing: sizes are bytes, enums and kernels are strings. */
export type SimParamValue = number | string | boolean;
export type SimParams = Readonly<Record<string, SimParamValue>>;

export interface SimParamSpec {
  readonly name: string;
  /**
   * "size": bytes, written with a binary suffix on the command line (1GiB, 64TiB);
   * "int"/"number": plain numbers; "enum": one of `values`; "bool": true/false.
   */
  readonly kind: "size" | "int" | "number" | "enum" | "bool";
  readonly default: SimParamValue;
  readonly doc: string;
  readonly values?: readonly string[];
  readonly min?: number;
  readonly max?: number;
}

export interface SimMetricSpec {
  readonly key: string;
  /** "ms", "ns", "count", "bytes", ... */
  readonly unit: string;
  readonly doc: string;
}

/** One labelled run of one parameter point. */
export interface SimScenarioRun {
  readonly label: string;
  readonly kernel: string;
  readonly params: SimParams;
  readonly metrics: Readonly<Record<string, number | null>>;
  /** The raw simulator result(s), for --perfetto and tests; not printed by --json. */
  readonly results?: readonly SimResult[];
}

export interface SimRunOptions {
  /** Seed of the simulator's random draws (grace-period lengths, data choices). */
  readonly seed?: number;
  /** Record a timeline for --perfetto (costs memory; off by default). */
  readonly timeline?: boolean;
  /** A variant's model-function overrides (simulate --variant), applied in every run. */
  readonly overrides?: ReadonlyMap<string, Function>;
  /**
   * Feature values on top of each run's kernel preset (simulate --feature), applied in every run,
   * after the scenario's own: the simulated kernel is the preset with these commits changed.
   */
  readonly features?: Partial<Features>;
  /** Asked now and then during each run; true cuts it short (SimOptions.stop), after Ctrl-C. */
  readonly stop?: () => boolean;
  /** Settings of the simulated machine every scenario takes (params.ts MACHINE_PARAMS). */
  readonly machine?: SimMachineSettings;
}

/** How the simulated host runs RCU callbacks and places woken tasks (--set on any scenario). */
export interface SimMachineSettings {
  readonly rcuCallbacks?: MachineConfig["rcuCallbackContext"];
  readonly wakePlacement?: SimOptions["wakePlacement"];
  /** CPUs per LLC; 0 or absent: one LLC. */
  readonly llcCpus?: number;
}

/**
 * The simulator options that carry SimRunOptions into a run: overrides, features via the run's
 * env, and the stop question.
 */
export function runHooks(
  opts: SimRunOptions,
): Pick<SimOptions, "overrides" | "env" | "stop" | "wakePlacement" | "llcCpus"> {
  const m = opts.machine ?? {};
  const env = new Map<string, unknown>();
  if (opts.features !== undefined) env.set(FEATURE_OVERRIDES_ENV, opts.features);
  // L3 (bounded hold) is the checker's question; a timed run answers it in time instead (how long
  // others wait), and stopping at the first long stretch would hide the very stall it measures.
  env.set(MACHINE_OVERRIDES_ENV, {
    holdBound: Number.POSITIVE_INFINITY,
    ...(m.rcuCallbacks === undefined ? {} : { rcuCallbackContext: m.rcuCallbacks }),
  });
  return {
    overrides: opts.overrides,
    stop: opts.stop,
    env,
    wakePlacement: m.wakePlacement,
    llcCpus: m.llcCpus === undefined || m.llcCpus === 0 ? undefined : m.llcCpus,
  };
}

export interface SimScenario {
  readonly name: string;
  /** The seed thread it answers ("000".."004"), or null. */
  readonly thread: string | null;
  readonly summary: string;
  readonly params: readonly SimParamSpec[];
  readonly metrics: readonly SimMetricSpec[];
  /** The metric a plot puts on the y axis by default (x is the swept parameter). */
  readonly headline: string;
  /** Run one parameter point (all params present, already validated). */
  run(params: SimParams, costs: Partial<CostModel>, opts?: SimRunOptions): SimScenarioRun[];
}
