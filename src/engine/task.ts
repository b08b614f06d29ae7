import type { ProfileRecorder } from "./bulk.js";
import type { AccessOp, Gen } from "./op.js";

/** One task of a run: a generator plus the bookkeeping the engine keeps for it. */
export interface Task {
  readonly id: number;
  readonly name: string;
  /** Id of the task that spawned it, or -1 for the scenario's initial tasks. */
  readonly parent: number;
  readonly lane: string;
  gen: Gen<void>;
  /** The access the task will perform when next resumed; null once done. */
  pending: AccessOp | null;
  done: boolean;
  /** Steps this task has executed. */
  steps: number;
  /** Named model-function frames, innermost last; maintained by modelFn. */
  readonly frames: string[];
  /** Profile recorders active in this task's code (src/engine/bulk.ts), innermost last. */
  recorders?: ProfileRecorder[];
  /** Opaque per-task slot for the layer above (the kernel keeps lock and RCU state here). */
  local: object | undefined;
}

/** The pseudo-task that runs a scenario's setup code before any real task. */
export function setupTask(): Task {
  return {
    id: -1,
    name: "setup",
    parent: -1,
    lane: "setup",
    gen: (function* () {})(),
    pending: null,
    done: true,
    steps: 0,
    frames: [],
    local: undefined,
  };
}
