import { ReplayMismatch } from "../scheduler.js";

/**
 * Thrown from scheduler and observer hooks to end a run early. It extends
 * ReplayMismatch because the runtime lets only that error escape a task's
 * resume (anything else becomes a model-error report).
 */
export class RunAbort extends ReplayMismatch {
  override name = "RunAbort";
  constructor(readonly why: "depth" | "sleep-blocked" | "redundant" | "interrupted" | "probe") {
    super(`run ended early: ${why}`);
  }
}

/** The model behaved differently when re-run along the same choices (hidden state or randomness). */
export class NondeterminismError extends ReplayMismatch {
  override name = "NondeterminismError";
}
