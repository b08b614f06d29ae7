import { basename, resolve as resolvePath } from "node:path";
import { DEFAULT_MAX_STEPS, explore, exploreAsync } from "../engine/explore/explore.js";
import { exploreParallel, type ParallelOptions } from "../engine/explore/parallel.js";
import type { RedisTarget } from "../engine/explore/queue/redis.js";
import { QueueTransport } from "../engine/explore/queue/transport.js";
import { shrink } from "../engine/explore/shrink.js";
import type { ExploreOptions, ExploreResult } from "../engine/explore/types.js";
import { findLasso, type Lasso } from "../engine/lasso.js";
import { type Program, type RunResult, runProgram } from "../engine/runtime.js";
import { ReplayScheduler } from "../engine/scheduler.js";
import type { MachineConfig } from "../kernel/machine.js";
import { WAIVED_INVARIANTS } from "../mmu/invariants/roots.js";
import { snapshotRun } from "../mmu/snapshot.js";
import { buildTraceDoc } from "../trace/build.js";
import { recordRun } from "../trace/record.js";
import { encodeReplayToken, type ReplayHeader } from "../trace/replay-token.js";
import type { TraceDoc, TraceRunInfo } from "../trace/schema.js";
import { contentHash, isBuiltinScenarioName, isBuiltinVariantName } from "./content-hash.js";
import { overridesOf, type RunConfig, type Variant } from "./define.js";
import { PROGRAM_FACTORY_MODULE, type ScenarioProgramArgs } from "./program-factory.js";
import type { ResolvedScenario } from "./resolve.js";
import { shipProgram } from "./ship.js";

/** One check request, fully resolved. */
export interface CheckRequest {
  readonly scenario: ResolvedScenario;
  readonly variant: Variant | null;
  /** The variant as the user named it (built-in name or path), for the replay token. */
  readonly variantRef: string | null;
  readonly config: RunConfig;
  /** The --feature flags as given, for the replay token. */
  readonly featureFlags: readonly string[];
  readonly machineFlags: Partial<MachineConfig>;
  readonly explore: ExploreOptions;
  /** Shrink a counterexample before reporting it (default true). */
  readonly shrink?: boolean;
  readonly shrinkBudget?: number;
}

export interface Counterexample {
  readonly trace: TraceDoc;
  readonly replay: string;
  readonly shrunk: {
    readonly from: { steps: number; preemptions: number };
    readonly to: { steps: number; preemptions: number };
    readonly minimal: boolean;
  } | null;
}

export interface CheckOutcome {
  readonly status: "ok" | "violation" | "inconclusive";
  readonly explore: ExploreResult;
  readonly counterexample: Counterexample | null;
  /** Replay string of the last execution explored (what an interrupted run reports). */
  readonly lastReplay: string | null;
  /**
   * Replay string of the longest execution the depth bound cut (a possible livelock: a loop that
   * never ends, or a bound too small for the scenario), or null if none was cut. Every cut run
   * reaches the bound, so this is the first one cut.
   */
  readonly depthCutReplay: string | null;
  /**
   * That run's repeating tail, if it ends in one: a suspected livelock, never a proof (the engine
   * sees the tasks' accesses, not their local state; src/engine/lasso.ts). Task names resolved.
   */
  readonly suspectedLivelock: SuspectedLivelock | null;
  /** What the user should know about the verdict, e.g. overrides of the variant that never ran. */
  readonly warnings: readonly string[];
}

/** A Lasso with its tasks named. */
export type SuspectedLivelock = Omit<Lasso, "tasks"> & { readonly tasks: readonly string[] };

/** A variant's overrides that no explored run called: the verdict says nothing about them. */
function overrideWarnings(req: CheckRequest, result: ExploreResult): string[] {
  const ran = new Set(result.stats.overridesRan);
  const where = result.complete ? "in any execution" : "in the executions explored";
  return Object.keys(req.variant?.overrides ?? {})
    .filter((n) => !ran.has(n))
    .map((n) => `the override of ${n} never ran ${where}: the verdict says nothing about it`);
}

/** The scenario's program for this configuration, with the variant's waived invariants set. */
export function programFor(req: Pick<CheckRequest, "scenario" | "config" | "variant">): Program {
  const inner = req.scenario.scenario.build(req.config);
  const waives = req.variant?.waives ?? [];
  const selected = req.scenario.scenario.invariants;
  const only = selected === undefined || selected.includes("all") ? null : new Set(selected);
  if (waives.length === 0 && only === null) return inner;
  const waived = new Set(waives);
  return (ctx) => {
    ctx.host.env.set(WAIVED_INVARIANTS, waived);
    ctx.host.filterReports((i) => !waived.has(i) && (only === null || only.has(i)));
    inner(ctx);
  };
}

export function replayHeaderFor(req: CheckRequest): ReplayHeader {
  const m: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(req.machineFlags))
    if (typeof v === "string" || typeof v === "number") m[k] = v;
  // Parameters that differ from the scenario's defaults: the run they describe needs them.
  const p: Record<string, number> = {};
  for (const [k, v] of Object.entries(req.config.params)) {
    if (req.scenario.scenario.params?.[k]?.default !== v) p[k] = v;
  }
  // A file is named by its base name and identified by its content hash: the string does not
  // depend on the working directory, and replaying it never loads a file the user did not pass.
  const scenario = fileRef(req.scenario.ref, isBuiltinScenarioName(req.scenario.ref));
  const variant = req.variantRef ? fileRef(req.variantRef, isBuiltinVariantName(req.variantRef)) : null;
  return {
    s: scenario.name,
    ...(scenario.hash ? { sh: scenario.hash } : {}),
    k: req.config.kernel,
    ...(req.featureFlags.length ? { f: req.featureFlags } : {}),
    ...(variant ? { v: variant.name, ...(variant.hash ? { vh: variant.hash } : {}) } : {}),
    ...(Object.keys(m).length ? { m } : {}),
    ...(Object.keys(p).length ? { p } : {}),
  };
}

function fileRef(ref: string, builtin: boolean): { name: string; hash?: string } {
  if (builtin) return { name: ref };
  return { name: basename(ref), hash: contentHash(ref) };
}

/**
 * The trace document of one schedule: replay `choices` with tracing on, a state snapshot after
 * every step and the spawn site of every task. Runs once per trace written or printed, never
 * during exploration.
 */
export function recordTraceDoc(
  program: Program,
  choices: readonly number[],
  opts: { overrides: ReadonlyMap<string, Function>; maxSteps?: number; run: TraceRunInfo; replay: string },
): { doc: TraceDoc; result: RunResult; leftover: number } {
  const rec = recordRun(program, choices, {
    overrides: opts.overrides,
    maxSteps: opts.maxSteps,
    snapshot: snapshotRun,
  });
  const doc = buildTraceDoc(rec.result, opts.run, opts.replay, {
    spawns: rec.spawns,
    initialState: rec.initialState,
    states: rec.states,
  });
  return { doc, result: rec.result, leftover: rec.leftover };
}

/** Explore; on a violation, shrink it and build the trace and replay token. Returns data only. */
export function runCheck(req: CheckRequest): CheckOutcome {
  const prep = prepare(req);
  return finish(req, prep, explore(prep.program, prep.options));
}

/**
 * The same, yielding to the event loop as it goes, so that an AbortSignal
 * (Ctrl-C) stops it cleanly with its statistics and a checkpoint.
 */
export async function runCheckAsync(req: CheckRequest): Promise<CheckOutcome> {
  const prep = prepare(req);
  return finish(req, prep, await exploreAsync(prep.program, prep.options));
}

/** Where a parallel check's jobs run when not on this machine's threads: a queue's workers. */
export interface QueueRun {
  readonly target: RedisTarget;
  readonly queueName: string;
  /** tdplab and model version, which workers compare with their own. */
  readonly version: string;
  readonly note?: (line: string) => void;
}

/**
 * The same over `jobs` worker threads, or over the workers of a queue. Workers rebuild the program
 * from plain data: the scenario and the variant by name or absolute path (each thread loads user
 * modules itself; a queue's workers get the files' content, see ship.ts) and the configuration
 * this thread resolved. With a queue, `jobs` is half the number of items kept in flight.
 */
export async function runCheckParallel(
  req: CheckRequest,
  jobs: number,
  queue?: QueueRun,
  splitDepth?: number,
  /** Jobs run the user's code: watch them (and hear of a counterexample before the run ends). */
  watched?: Pick<ParallelOptions, "watch" | "onViolation">,
): Promise<CheckOutcome> {
  const prep = prepare(req);
  const { overrides: _o, onExecution: _e, ...options } = prep.options;
  const ref = req.scenario.ref;
  const vref = req.variantRef;
  // Worker threads load the variant themselves: it must have a name or a path.
  if (req.variant !== null && vref === null)
    throw new Error("runCheckParallel: the variant needs variantRef");
  const args: ScenarioProgramArgs = {
    scenario: isBuiltinScenarioName(ref) ? ref : resolvePath(ref),
    variant: vref === null || isBuiltinVariantName(vref) ? vref : resolvePath(vref),
    config: req.config,
  };
  const transport =
    queue === undefined ? undefined : await QueueTransport.open({ ...queue, program: shipProgram(args) });
  try {
    const result = await exploreParallel(
      { module: PROGRAM_FACTORY_MODULE, export: "scenarioProgram", args },
      { ...options, jobs, transport, splitDepth, ...watched },
    );
    return finish(req, prep, result);
  } finally {
    // exploreParallel closes it too, unless it failed before it started.
    await transport?.close();
  }
}

interface Prepared {
  readonly program: Program;
  readonly overrides: ReadonlyMap<string, Function>;
  readonly maxSteps: number | undefined;
  readonly options: ExploreOptions;
  readonly last: { choices: readonly number[] | null };
  readonly longestCut: { choices: readonly number[] | null; steps: number };
}

function prepare(req: CheckRequest): Prepared {
  const program = programFor(req);
  const overrides = overridesOf(req.variant);
  const maxSteps = req.explore.maxSteps ?? req.scenario.scenario.maxSteps;
  const last: { choices: readonly number[] | null } = { choices: null };
  const longestCut: Prepared["longestCut"] = { choices: null, steps: -1 };
  const user = req.explore.onExecution;
  const options: ExploreOptions = {
    ...req.explore,
    overrides,
    maxSteps,
    onExecution: (run) => {
      last.choices = run.choices;
      if (run.depthCut && run.steps > longestCut.steps) {
        longestCut.choices = run.choices.slice();
        longestCut.steps = run.steps;
      }
      user?.(run);
    },
  };
  return { program, overrides, maxSteps, options, last, longestCut };
}

function finish(req: CheckRequest, prep: Prepared, result: ExploreResult): CheckOutcome {
  const header = replayHeaderFor(req);
  const lastReplay = prep.last.choices ? encodeReplayToken({ header, choices: prep.last.choices }) : null;
  const cut = prep.longestCut.choices;
  const depthCutReplay = cut
    ? encodeReplayToken({ header: { ...header, d: prep.maxSteps ?? DEFAULT_MAX_STEPS }, choices: cut })
    : null;
  const suspectedLivelock = cut ? lassoOf(prep, cut) : null;
  const warnings = overrideWarnings(req, result);
  if (result.violation === null) {
    return {
      status: result.complete ? "ok" : "inconclusive",
      explore: result,
      counterexample: null,
      lastReplay,
      depthCutReplay,
      suspectedLivelock,
      warnings,
    };
  }
  let choices = result.violation.choices;
  let shrunk: Counterexample["shrunk"] = null;
  if (req.shrink ?? true) {
    const s = shrink(prep.program, choices, {
      overrides: prep.overrides,
      maxSteps: prep.maxSteps,
      budget: req.shrinkBudget ?? 2000,
    });
    choices = s.choices;
    shrunk = {
      from: s.original,
      to: { steps: s.steps, preemptions: s.preemptions },
      minimal: s.provenMinimal,
    };
  }
  const replay = encodeReplayToken({ header, choices });
  const trace = recordTraceDoc(prep.program, choices, {
    overrides: prep.overrides,
    maxSteps: prep.maxSteps,
    run: traceRunInfo(req),
    replay,
  }).doc;
  return {
    status: "violation",
    explore: result,
    counterexample: { trace, replay, shrunk },
    lastReplay,
    depthCutReplay,
    suspectedLivelock,
    warnings,
  };
}

/**
 * The repeating tail of a cut run, from a recorded replay of it (the runtime looks for one when
 * it stops a recorded run at the bound).
 */
function lassoOf(prep: Prepared, choices: readonly number[]): SuspectedLivelock | null {
  const r = runProgram(prep.program, {
    scheduler: new ReplayScheduler(choices),
    record: true,
    maxSteps: prep.maxSteps ?? DEFAULT_MAX_STEPS,
    overrides: prep.overrides,
  });
  const l = findLasso(r.trace ?? []);
  if (l === null) return null;
  return { ...l, tasks: l.tasks.map((t) => r.taskNames[t] ?? `task${t}`) };
}

export function traceRunInfo(
  req: Pick<CheckRequest, "scenario" | "config" | "featureFlags" | "variantRef" | "explore">,
) {
  return {
    scenario: req.scenario.scenario.name,
    kernel: req.config.kernel,
    features: [...req.featureFlags],
    variant: req.variantRef,
    strategy: req.explore.strategy ?? "dpor",
    ...(req.explore.seed !== undefined ? { seed: `0x${req.explore.seed.toString(16)}` } : {}),
  };
}
