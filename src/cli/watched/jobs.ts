import type { Checkpoint, ExploreOptions, Progress } from "../../engine/explore/types.js";
import type { MachineConfig } from "../../kernel/machine.js";
import { type CheckOutcome, type CheckRequest, runCheckAsync } from "../../scenarios/check.js";
import type { RunConfig } from "../../scenarios/define.js";
import { type ReplayFiles, recordReplay } from "../../scenarios/replay.js";
import { resolveScenario, resolveVariant } from "../../scenarios/resolve.js";

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
  | { readonly kind: "replay"; readonly replay: string; readonly files: ReplayFiles };

/** ExploreOptions without its callbacks and signal, which the thread supplies. */
export type PlainExploreOptions = Omit<
  ExploreOptions,
  "signal" | "onProgress" | "onCheckpoint" | "onExecution" | "overrides"
>;

export type JobResult<J extends WatchedJob> = J extends { kind: "check" }
  ? CheckOutcome
  : Awaited<ReturnType<typeof recordReplay>>;

/** What the thread tells the watchdog while it works. */
export type JobEvent =
  | { readonly type: "started" }
  | { readonly type: "progress"; readonly progress: Progress }
  | { readonly type: "checkpoint"; readonly checkpoint: Checkpoint };

/** Run `job` in this thread; `emit` reports progress, `signal` stops an exploration cleanly. */
export async function runJob(
  job: WatchedJob,
  signal: AbortSignal,
  emit: (e: JobEvent) => void,
): Promise<CheckOutcome | Awaited<ReturnType<typeof recordReplay>>> {
  if (job.kind === "replay") {
    emit({ type: "started" });
    return recordReplay(job.replay, job.files);
  }
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
