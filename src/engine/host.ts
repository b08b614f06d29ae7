import type { Task } from "./task.js";
import type { ViolationInput } from "./violation.js";

/**
 * What model code may ask of whichever engine is running it. The checker's
 * runtime and the timed simulator both implement it; the kernel layer talks
 * to nothing else.
 */
export interface Host {
  /** The task whose code is executing right now. */
  readonly current: Task;
  /** Index of the step being executed (0-based; -1 during setup). */
  readonly stepIndex: number;
  /** Allocate an id for a shared object, used in ops and traces. */
  newObject(name: string): number;
  objectName(id: number): string;
  /** Record a violation; the engine decides whether the run stops. */
  report(v: ViolationInput): void;
  /**
   * Keep only the violations whose invariant `keep` accepts (a scenario's selected invariants, a
   * variant's waived ones). Set during program setup; "model-error" is always kept.
   */
  filterReports(keep: (invariant: string) => boolean): void;
  /** Per-run environment for the layers above (kernel machine, model config). */
  readonly env: Map<string, unknown>;
  /** Named-function overrides active for this run (mutations). */
  readonly overrides: ReadonlyMap<string, Function>;
  /** An override was called (so a run can say which of a variant's overrides it exercised). */
  overrideRan(name: string): void;
  /** When coverage is on: the model functions this run entered. */
  readonly coverage: Set<string> | null;
  /** Register a check run after every step (invariants). */
  addCheck(name: string, check: () => void): void;
  /** Note a timed cost for the simulator; the checker ignores it. */
  cost(kind: string, units: number): void;
}

let active: Host | null = null;

/** The engine hosting the code that is running now. */
export function host(): Host {
  if (active === null) throw new Error("model code ran outside an engine run");
  return active;
}

/** Engines call this around every resume of model code. */
export function setActiveHost(h: Host | null): Host | null {
  const prev = active;
  active = h;
  return prev;
}
