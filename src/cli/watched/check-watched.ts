import { extname } from "node:path";
import { DEFAULT_MAX_STEPS } from "../../engine/explore/explore.js";
import { STOP_GRACE_MS } from "../../engine/explore/parallel.js";
import type { Checkpoint } from "../../engine/explore/types.js";
import { IMPORT_TASK } from "../../engine/shared-beacon.js";
import { type CheckOutcome, type CheckRequest, replayHeaderFor } from "../../scenarios/check.js";
import { isBuiltinScenarioName, isBuiltinVariantName } from "../../scenarios/content-hash.js";
import { encodeReplayToken } from "../../trace/replay-token.js";
import type { ParallelJob, PlainExploreOptions } from "./jobs.js";
import { type Killed, type Stall, stallMessage } from "./stall.js";
import { GRACE_MS, runWatched } from "./watchdog.js";

const MODULE_EXT = new Set([".ts", ".mts", ".js", ".mjs", ".cjs", ".cts"]);

/** A scenario or variant reference that is code of the user's (a module, not a built-in or a data file). */
function isUserModule(ref: string | null, builtin: (r: string) => boolean): boolean {
  return ref !== null && !builtin(ref) && MODULE_EXT.has(extname(ref).toLowerCase());
}

/** Whether a check runs the user's own code, and so must run where a watchdog can stop it. */
export function needsWatchdog(req: Pick<CheckRequest, "scenario" | "variantRef">): boolean {
  return (
    isUserModule(req.scenario.ref, isBuiltinScenarioName) ||
    isUserModule(req.variantRef, isBuiltinVariantName)
  );
}

/** A watched check that had to be killed: where, why, and what it had done by then. */
export interface KilledCheck {
  readonly killed: Killed;
  /**
   * The user's loop, when a task's code was found running without reaching a primitive:
   * "task T in FN() ran N ms without reaching a primitive".
   */
  readonly stall: Stall | null;
  /** The run it was in, up to that point, as a replay string (null if too long to publish). */
  readonly replay: string | null;
  /** A counterexample found before the thread had to be killed (not shrunk), as a replay string. */
  readonly counterexample: string | null;
  /** How long the run was given to answer its stop before it was killed. */
  readonly graceMs: number;
}

/**
 * runCheckAsync() in a worker thread under a watchdog. Progress and checkpoints reach `req`'s
 * callbacks as messages; the verdict comes back as data, or, when the thread had to be killed, what
 * the watchdog saw last.
 */
export async function runCheckWatched(
  req: CheckRequest,
  stepTimeoutMs: number,
  /** Split over threads or a queue: the coordinator runs in the watched thread and watches every job. */
  parallel?: Omit<ParallelJob, "stepTimeoutMs" | "choiceCapacity">,
  /** Lines of the queue's for the user. */
  note?: (line: string) => void,
): Promise<CheckOutcome | KilledCheck> {
  const { signal, onProgress, onCheckpoint, onExecution: _e, overrides: _o, ...plain } = req.explore;
  const explore: PlainExploreOptions = plain;
  const maxSteps = req.explore.maxSteps ?? req.scenario.scenario.maxSteps ?? DEFAULT_MAX_STEPS;
  // Every step may be a choice, and data choices come on top: room for twice the bound.
  const choiceCapacity = 2 * maxSteps + 1024;
  // A parallel run gives its jobs a grace of their own to answer a stop (STOP_GRACE_MS) first.
  const graceMs = parallel === undefined ? GRACE_MS : GRACE_MS + STOP_GRACE_MS;
  const w = await runWatched(
    {
      kind: "check",
      scenario: req.scenario.ref,
      variant: req.variantRef,
      config: req.config,
      featureFlags: req.featureFlags,
      machineFlags: req.machineFlags,
      shrink: req.shrink ?? true,
      explore,
      ...(parallel === undefined ? {} : { parallel: { ...parallel, stepTimeoutMs, choiceCapacity } }),
    },
    {
      signal: signal ?? new AbortController().signal,
      stepTimeoutMs,
      timeLimitMs: req.explore.timeLimitMs,
      choiceCapacity,
      watchTasks: true,
      graceMs,
      onEvent: (e) => {
        if (e.type === "progress") onProgress?.(e.progress);
        else if (e.type === "checkpoint") onCheckpoint?.(e.checkpoint as Checkpoint);
        else if (e.type === "note") note?.(e.line);
      },
    },
  );
  if (w.kind === "done") return w.value as CheckOutcome;
  const b = w.beacon;
  const header =
    req.explore.maxSteps === undefined ? replayHeaderFor(req) : { ...replayHeaderFor(req), d: maxSteps };
  const replay = b.choices === null ? null : encodeReplayToken({ header, choices: b.choices });
  const counterexample = w.found === null ? null : encodeReplayToken({ header, choices: w.found });
  return { killed: w, stall: stallMessage(w), replay, counterexample, graceMs };
}

/** Whether `ref` names a module of the user's (its code runs when imported). */
export function isModuleRef(ref: string | null, kind: "scenario" | "variant"): ref is string {
  return isUserModule(ref, kind === "scenario" ? isBuiltinScenarioName : isBuiltinVariantName);
}

export function isKilled(o: CheckOutcome | KilledCheck): o is KilledCheck {
  return (o as KilledCheck).killed !== undefined;
}

/** The header fields every check result document has. */
export interface DocHead {
  readonly scenario: string;
  readonly kernel: string;
  readonly features: readonly string[];
  readonly variant: string | null;
  readonly strategy: string;
  readonly seed: string;
}

/** A killed check as the JSON result document (the same shape as a finished one's). */
export function killedDoc(head: DocHead, k: KilledCheck) {
  const p = k.killed.progress;
  return {
    schemaVersion: 1,
    status: k.stall || k.counterexample ? "violation" : "inconclusive",
    complete: false,
    cutBy: [k.killed.why],
    kernel: head.kernel,
    features: head.features,
    variant: head.variant,
    scenario: head.scenario,
    strategy: head.strategy,
    seed: head.seed,
    stats: { executions: p?.executions ?? 0, steps: p?.steps ?? 0, elapsedMs: p?.elapsedMs ?? 0 },
    violation: k.stall
      ? {
          invariant: "user-error",
          message: `error in your module: ${k.stall.message}`,
          task: k.stall.task,
          fn: k.stall.fn,
          step: k.stall.step,
          stalledMs: k.stall.ms,
          replay: k.replay,
          shrunk: null,
          trace: null,
        }
      : null,
    lastReplay: k.replay,
    counterexample: k.counterexample,
    depthCutReplay: null,
    suspectedLivelock: null,
    warnings: [],
  };
}

/** A killed check for a reader: verdict line, the user's loop if that was it, and the replay string. */
export function formatKilled(label: string, strategy: string, k: KilledCheck): string {
  const p = k.killed.progress;
  const verdict = k.stall ? "ERROR in your module" : k.counterexample ? "VIOLATION" : "inconclusive";
  const lines = [
    `${label}: ${verdict}; ${strategy}, ${p?.executions ?? 0} executions, ${p?.steps ?? 0} steps done; incomplete: cut by ${k.killed.why}`,
  ];
  if (k.stall) {
    const s = k.stall;
    const hint =
      s.task === IMPORT_TASK
        ? ""
        : " (a loop that never yields? every pass of a loop must reach a primitive, e.g. yield* READ_ONCE(x))";
    lines.push(`error in your module: ${s.message}${hint}`, `  ${s.where}`);
  } else {
    lines.push(
      `the run did not stop within ${k.graceMs} ms of the ${k.killed.why === "time-limit" ? "time limit" : "stop request"}, and was stopped`,
    );
  }
  if (k.counterexample !== null) {
    lines.push(
      "",
      `a counterexample was found before the run had to be stopped (not shrunk): ${k.counterexample}`,
      `  tdplab replay '${k.counterexample}'`,
    );
  }
  if (k.stall?.task === IMPORT_TASK) return lines.join("\n");
  if (k.replay !== null) {
    lines.push("", `${k.stall ? "replay" : "last execution"}: ${k.replay}`, `  tdplab replay '${k.replay}'`);
  } else lines.push("", "(the run had more choices than the watchdog keeps: no replay string)");
  return lines.join("\n");
}
