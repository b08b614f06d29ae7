import { type Program, type RunObserver, type RunResult, Runtime } from "../runtime.js";
import type { Scheduler } from "../scheduler.js";
import { RunAbort } from "./errors.js";

export interface DriveConfig {
  readonly program: Program;
  readonly maxSteps: number;
  readonly overrides?: ReadonlyMap<string, Function>;
  readonly stopRunAtViolation?: boolean;
  readonly coverage?: boolean;
}

/**
 * Run the program once with `searcher` as both scheduler and observer. One
 * step past maxSteps is allowed so a depth cut is visible. A RunAbort thrown by
 * the searcher (time limit, interrupt) ends the run and is handed back.
 */
export function driveRun(
  cfg: DriveConfig,
  searcher: Scheduler & RunObserver,
): { result: RunResult; abort: RunAbort | null } {
  const rt = new Runtime({
    scheduler: searcher,
    observer: searcher,
    maxSteps: cfg.maxSteps + 1,
    overrides: cfg.overrides,
    stopOnViolation: cfg.stopRunAtViolation ?? true,
    coverage: cfg.coverage,
  });
  let abort: RunAbort | null = null;
  try {
    rt.start(cfg.program);
    if (!rt.stopped) rt.runToEnd();
  } catch (e) {
    if (!(e instanceof RunAbort)) throw e;
    abort = e;
  }
  return { result: rt.result(), abort };
}
