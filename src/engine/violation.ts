/** A property that failed during a run. Plain data: JSON-safe. */
export interface Violation {
  /** Invariant or check name, e.g. "WARN", "use-after-free", "deadlock", "inv4-no-uaf-roots". */
  readonly invariant: string;
  readonly message: string;
  /** Task that was running (or -1 for a check evaluated between steps). */
  readonly task: number;
  readonly taskName: string;
  /** Index of the step at which it was detected. */
  readonly step: number;
  /** Model function and step label active when detected. */
  readonly fn: string;
  /** Objects and values involved. */
  readonly details: Readonly<Record<string, unknown>>;
}

export interface ViolationInput {
  readonly invariant: string;
  readonly message: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Thrown by model code to abort its task (BUG(), or an unrecoverable model state). */
export class TaskAbort extends Error {
  override name = "TaskAbort";
}

/**
 * The code the engine was given (a scenario's setup, a task body, a model-function override)
 * broke the engine's contract: a task body that is not a generator object, an override that does
 * not return one. Reported as the user's error, never as the engine's.
 */
export class UserCodeError extends Error {
  override name = "UserCodeError";
}
