import type { Checkpoint, ExploreOptions, Progress } from "../../engine/explore/types.js";
import type { MachineConfig } from "../../kernel/machine.js";
import { type CheckOutcome, type CheckRequest, runCheckAsync } from "../../scenarios/check.js";
import { overridesOf, type RunConfig } from "../../scenarios/define.js";
import { type ReplayFiles, recordReplay } from "../../scenarios/replay.js";
import { resolveScenario, resolveVariant } from "../../scenarios/resolve.js";
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
  | { readonly type: "point"; readonly index: number };

/**
 * Run `job` in this thread; `emit` reports progress. Asked to stop, an exploration sees `signal`
 * between its slices, and a simulation asks `stopped` between its events (it yields to nothing).
 */
export async function runJob(
  job: WatchedJob,
  signal: AbortSignal,
  stopped: () => boolean,
  emit: (e: JobEvent) => void,
): Promise<CheckOutcome | Awaited<ReturnType<typeof recordReplay>> | PlanOutcome> {
  if (job.kind === "replay") {
    emit({ type: "started" });
    return recordReplay(job.replay, job.files);
  }
  if (job.kind === "simulate") return simulateJob(job, stopped, emit);
  const scenario = await resolveScenario(job.scenario);
  const variant = await resolveVariant(job.variant);
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
      ...(job.explore.checkpointEveryMs === undefined
        ? {}
        : { onCheckpoint: (checkpoint: Checkpoint) => emit({ type: "checkpoint", checkpoint }) }),
    },
  };
  emit({ type: "started" });
  return runCheckAsync(req);
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
