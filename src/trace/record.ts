import { setActiveHost } from "../engine/host.js";
import { type Program, type RunObserver, type RunResult, Runtime } from "../engine/runtime.js";
import { ReplayScheduler } from "../engine/scheduler.js";

/** Who created a task: its parent (-1 for the program's own tasks) and the step during which it did. */
export interface SpawnSite {
  readonly parent: number;
  /** Index of the step the parent was executing (-1: during the program's setup). */
  readonly step: number;
}

export interface RecordedRun<S> {
  readonly result: RunResult;
  /** Spawn site of every task, by task id. */
  readonly spawns: readonly SpawnSite[];
  /** State after the setup, before the first step (when a snapshot function was given). */
  readonly initialState?: S;
  /** states[i]: the state after step i (when a snapshot function was given). */
  readonly states?: readonly S[];
  /** Recorded choices the run did not use: a replay of another program, or a truncated one. */
  readonly leftover: number;
}

export interface RecordOptions<S> {
  readonly overrides?: ReadonlyMap<string, Function>;
  readonly maxSteps?: number;
  /**
   * Observer of the run's state, called between steps with the runtime. It must only read: it
   * runs inside the replay, and anything it changed would change the run it records.
   */
  readonly snapshot?: (rt: Runtime) => S;
}

/**
 * Replay a choice sequence with tracing on, recording who spawned each task and, optionally, the
 * model state after every step. Exploration never pays for this: it runs once, for the trace
 * that is written or printed.
 *
 * A state is taken when the runtime is about to execute the next step (onStep), which is after
 * the previous step and its checks and before anything else changes, and once more when the run
 * ends; so states[i] is exactly the state after steps[i].
 */
export function recordRun<S>(
  program: Program,
  choices: readonly number[],
  opts: RecordOptions<S> = {},
): RecordedRun<S> {
  const spawns: SpawnSite[] = [];
  const states: S[] = [];
  const snap = opts.snapshot;
  const observer: RunObserver = {
    onSpawn(child, parent) {
      spawns[child.id] = { parent, step: rt.stepIndex };
    },
    onStep(index) {
      if (snap !== undefined && index > 0) states.push(snap(rt));
    },
  };
  const sched = new ReplayScheduler(choices);
  const rt: Runtime = new Runtime({
    scheduler: sched,
    record: true,
    overrides: opts.overrides,
    maxSteps: opts.maxSteps,
    observer,
  });
  rt.start(program);
  // The state before the first step: the setup's, with every initial task primed.
  const initialState = snap === undefined ? undefined : hosted(rt, snap);
  if (!rt.stopped) rt.runToEnd();
  const result = rt.result();
  const leftover = choices.length - sched.consumed;
  if (snap === undefined) return { result, spawns, leftover };
  if ((result.trace?.length ?? 0) > 0) states.push(hosted(rt, snap));
  return { result, spawns, initialState, states, leftover };
}

/** Run `f` with `rt` as the active host: a pending op's `enabled` test may consult it. */
function hosted<S>(rt: Runtime, f: (rt: Runtime) => S): S {
  const prev = setActiveHost(rt);
  try {
    return f(rt);
  } finally {
    setActiveHost(prev);
  }
}
