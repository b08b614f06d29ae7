import { IMPORT_TASK } from "../../engine/shared-beacon.js";
import { GRACE_MS, type Watched } from "./watchdog.js";

export type Killed = Extract<Watched, { kind: "killed" }>;

/** A task's code that ran too long without reaching a primitive. */
export interface Stall {
  readonly task: string;
  readonly fn: string;
  readonly step: number;
  readonly ms: number;
  /** "task T in FN() ran N ms without reaching a primitive" */
  readonly message: string;
  /** "at step S, in task T, in FN()" */
  readonly where: string;
}

/** The user's loop a killed thread was in, if that is why it did not answer; null otherwise. */
export function stallMessage(w: Killed): Stall | null {
  const b = w.beacon;
  // A stop that found the engine's own code running (between runs, shrinking), or a task's code
  // that had just been entered, is no loop of the user's.
  const ms = w.stalledMs === null ? null : Math.round(w.stalledMs);
  if (ms === null || b.task === null || ms < GRACE_MS / 2) return null;
  if (b.task === IMPORT_TASK) {
    // fn is the module being imported: its top-level code never finished.
    const file = b.fn ?? "your module";
    return {
      task: b.task,
      fn: file,
      step: -1,
      ms,
      message: `importing ${file} ran ${ms} ms without finishing (a loop in the module's top-level code?)`,
      where: `while importing ${file}`,
    };
  }
  const fn = b.fn ?? "<task>";
  const who = b.task === "setup" ? "the scenario's setup" : `task ${b.task}`;
  return {
    task: b.task,
    fn,
    step: b.step,
    ms,
    message: `${who} in ${fnLabel(fn)} ran ${ms} ms without reaching a primitive`,
    where: b.step < 0 ? "in the scenario's setup" : `at step ${b.step}, in task ${b.task}, in ${fnLabel(fn)}`,
  };
}

export function fnLabel(fn: string | null): string {
  return fn === null || fn === "<task>" ? "its own body" : `${fn}()`;
}
