import type { Task } from "./task.js";

/**
 * Where a run is, told to a watchdog that cannot interrupt it. A task's code runs between two
 * primitives without the engine seeing it, so a loop that never yields hangs the thread; a
 * watchdog in another thread can only tell that from what the engine published last. The engine
 * calls these hooks (when one is installed) and knows nothing of what listens.
 */
export interface Beacon {
  /** A new run starts: its choices so far are none. */
  run(): void;
  /** The run recorded a choice (a scheduling pick or a data choice), in order. */
  choice(value: number): void;
  /** Control passes into `task`'s code (a resume, or the scenario's setup) at step `step`. */
  enter(task: Task, step: number): void;
  /** Control came back from the code entered last. */
  leave(): void;
  /** The running task's innermost model function is now `fn` ("<task>": its own body). */
  frame(fn: string): void;
}

/**
 * The installed beacon, if any. One per thread: a thread runs one engine run at a time, and the
 * hooks cost one load and a null test when none is installed.
 */
export const BEACON: { current: Beacon | null } = { current: null };
