import { BEACON } from "../../engine/beacon.js";
import type { RedisTarget } from "../../engine/explore/queue/redis.js";
import type { Checkpoint, ExploreOptions, Progress } from "../../engine/explore/types.js";
import { SharedBeacon } from "../../engine/shared-beacon.js";
import type { MachineConfig } from "../../kernel/machine.js";
import {
  type CheckOutcome,
  type CheckRequest,
  runCheckAsync,
  runCheckParallel,
} from "../../scenarios/check.js";
import { overridesOf, type RunConfig } from "../../scenarios/define.js";
import { type ReplayFiles, recordReplay } from "../../scenarios/replay.js";
import { prepareImports, resolveScenario, resolveVariant } from "../../scenarios/resolve.js";
import { simFeatures } from "../../scenarios/sim/features.js";
import { planSimulation } from "../../scenarios/sim/params.js";
import { findSimScenario, SIM_SCENARIOS } from "../../scenarios/sim/registry.js";
import { type PlanOutcome, runPlan } from "../../scenarios/sim/run-plan.js";

/**
 * The work a watched thread does: plain data in (a worker cannot receive functions or loaded
 * modules), plain data out. The thread loads the user's modules itself.
 */
export type WatchedJob =
  | {
      readonly kind: "check";
      /** The scenario and variant as the user named them (the replay header records these). */
      readonly scenario: string;
      readonly variant: string | null;
      readonly config: RunConfig;
      readonly featureFlags: readonly string[];
      readonly machineFlags: Partial<MachineConfig>;
      readonly shrink: boolean;
      readonly explore: PlainExploreOptions;
      /** Split over worker threads or a queue: this thread coordinates, and watches every job. */
      readonly parallel?: ParallelJob;
    }
  | {
      /** Import a user's module (scenario or variant), and nothing else: a loop at its top level is found here. */
      readonly kind: "import";
      readonly what: "scenario" | "variant";
      readonly ref: string;
    }
  | { readonly kind: "replay"; readonly replay: string; readonly files: ReplayFiles }
  | {
      readonly kind: "simulate";
      readonly scenario: string;
      readonly plan: PlanInput;
      readonly variant: string | null;
      readonly featureFlags: readonly string[];
      readonly seed?: number;
      readonly timeline: boolean;
    };

/** A parallel check as the watched thread runs it (plain data: no callbacks). */
export interface ParallelJob {
  readonly jobs: number;
  readonly splitDepth?: number;
  readonly queue?: { readonly target: RedisTarget; readonly queueName: string; readonly version: string };
  readonly stepTimeoutMs: number;
  readonly choiceCapacity: number;
}

/** What planSimulation() takes from the command line (the thread plans the same points again). */
export interface PlanInput {
  readonly set: readonly string[];
  readonly sweep: readonly string[];
  readonly kernel?: string;
}

/** ExploreOptions without its callbacks and signal, which the thread supplies. */
export type PlainExploreOptions = Omit<
  ExploreOptions,
  "signal" | "onProgress" | "onCheckpoint" | "onExecution" | "overrides"
>;

/** What the thread tells the watchdog while it works. */
export type JobEvent =
  | { readonly type: "started" }
  | { readonly type: "progress"; readonly progress: Progress }
  | { readonly type: "checkpoint"; readonly checkpoint: Checkpoint }
  | { readonly type: "point"; readonly index: number }
  /** A counterexample (not shrunk yet): printed if the thread must be killed before it answers. */
  | { readonly type: "found"; readonly choices: readonly number[] }
  /** A line of the queue's for the user (stderr). */
  | { readonly type: "note"; readonly line: string };

/**
 * Run `job` in this thread; `emit` reports progress. Asked to stop, an exploration sees `signal`
 * between its slices, and a simulation asks `stopped` between its events (it yields to nothing).
 */
export async function runJob(
  job: WatchedJob,
  signal: AbortSignal,
  stopped: () => boolean,
  emit: (e: JobEvent) => void,
): Promise<CheckOutcome | Awaited<ReturnType<typeof recordReplay>> | PlanOutcome | null> {
  if (job.kind === "replay") {
    emit({ type: "started" });
    return recordReplay(job.replay, job.files);
  }
  if (job.kind === "simulate") return simulateJob(job, stopped, emit);
  if (job.kind === "import") return importJob(job, emit);
  const scenario = await resolveScenario(job.scenario);
  const variant = await resolveVariant(job.variant);
  let found = false;
  const onViolation = (choices: readonly number[]) => {
    if (found) return;
    found = true;
    emit({ type: "found", choices: choices.slice() });
  };
  const req: CheckRequest = {
    scenario,
    variant,
    variantRef: job.variant,
    config: job.config,
    featureFlags: job.featureFlags,
    machineFlags: job.machineFlags,
    shrink: job.shrink,
    explore: {
      ...job.explore,
      signal,
      onProgress: (progress) => emit({ type: "progress", progress }),
      onExecution: (run) => {
        if (run.violations.length > 0) onViolation(run.choices);
      },
      ...(job.explore.checkpointEveryMs === undefined
        ? {}
        : { onCheckpoint: (checkpoint: Checkpoint) => emit({ type: "checkpoint", checkpoint }) }),
    },
  };
  emit({ type: "started" });
  const p = job.parallel;
  if (p === undefined) return runCheckAsync(req);
  const queue = p.queue && { ...p.queue, note: (line: string) => emit({ type: "note", line }) };
  return runCheckParallel(req, p.jobs, queue, p.splitDepth, {
    watch: { stepTimeoutMs: p.stepTimeoutMs, choiceCapacity: p.choiceCapacity },
    onViolation,
  });
}

/**
 * Import the user's module under the beacon, as the pseudo-task IMPORT_TASK: tdplab's own modules
 * (and TypeScript's loader) are loaded first, so only the module's own loading is timed.
 */
async function importJob(
  job: Extract<WatchedJob, { kind: "import" }>,
  emit: (e: JobEvent) => void,
): Promise<null> {
  await prepareImports(job.ref);
  emit({ type: "started" });
  const beacon = BEACON.current instanceof SharedBeacon ? BEACON.current : null;
  beacon?.loading(job.ref);
  try {
    if (job.what === "scenario") await resolveScenario(job.ref);
    else await resolveVariant(job.ref);
  } finally {
    beacon?.leave();
  }
  return null;
}

async function simulateJob(
  job: Extract<WatchedJob, { kind: "simulate" }>,
  stopped: () => boolean,
  emit: (e: JobEvent) => void,
): Promise<PlanOutcome> {
  const scenario = findSimScenario(job.scenario, SIM_SCENARIOS);
  if (scenario === undefined) throw new Error(`no simulator scenario '${job.scenario}'`);
  const plan = planSimulation(scenario, job.plan);
  const variant = await resolveVariant(job.variant);
  const features = simFeatures(variant?.features, job.featureFlags);
  emit({ type: "started" });
  return runPlan(plan, {
    seed: job.seed,
    timeline: job.timeline,
    overrides: variant === null ? undefined : overridesOf(variant),
    features: features ?? undefined,
    stop: stopped,
    onPoint: (index) => emit({ type: "point", index }),
  });
}
