import { BEACON } from "./beacon.js";
import { type Host, setActiveHost } from "./host.js";
import { findLasso } from "./lasso.js";
import { THROWN_IN } from "./model-fn.js";
import type { AccessKind, AccessOp, ChooseOp, Gen } from "./op.js";
import { ReplayMismatch, type Scheduler } from "./scheduler.js";
import { setupTask, type Task } from "./task.js";
import { describeValue, errorOrigin, isGenerator } from "./user-frame.js";
import { TaskAbort, UserCodeError, type Violation, type ViolationInput } from "./violation.js";

/** One executed step, as recorded when tracing is on. */
export interface StepRecord {
  readonly task: number;
  readonly kind: AccessKind;
  readonly obj: number;
  readonly fn: string;
  readonly step: string;
}

export interface RunStats {
  steps: number;
  tasks: number;
  /** Scheduling points with two or more enabled tasks, plus data choices with n >= 2. */
  choicePoints: number;
  maxEnabled: number;
}

export interface RunResult {
  readonly status: "ok" | "violation";
  readonly violations: readonly Violation[];
  /** The choice sequence: feed it to a ReplayScheduler to get the same run. */
  readonly choices: readonly number[];
  /** Executed steps, when `record` was set. */
  readonly trace: readonly StepRecord[] | null;
  readonly stats: RunStats;
  readonly taskNames: readonly string[];
  readonly taskLanes: readonly string[];
  readonly objectNames: readonly string[];
  /** Overrides (by kernel name) the run called. */
  readonly overridesRan: readonly string[];
  /** Model functions the run entered, when coverage was on. */
  readonly functionsRun?: readonly string[];
}

/** Hooks for explorers that need to see every step (DPOR, shrinking, tracing). */
export interface RunObserver {
  onSpawn?(child: Task, parentId: number): void;
  /** Called before `task` executes `op`; `enabled` is the set it was picked from. */
  onStep?(index: number, task: Task, op: AccessOp, enabled: readonly Task[]): void;
  onChoice?(index: number, task: Task, op: ChooseOp, n: number, value: number): void;
}

export interface RunOptions {
  readonly scheduler: Scheduler;
  /** Bound on steps; passing it is reported as a possible livelock. */
  readonly maxSteps?: number;
  readonly record?: boolean;
  readonly stopOnViolation?: boolean;
  readonly overrides?: ReadonlyMap<string, Function>;
  readonly observer?: RunObserver;
  /** Record which model functions the run enters (RunResult.functionsRun). */
  readonly coverage?: boolean;
  /** Entries `host().env` starts with (opaque to the engine; the model's configuration reads them). */
  readonly env?: ReadonlyMap<string, unknown>;
}

/** What a program's setup code gets: spawn the initial tasks, reach the host. */
export interface ProgramContext {
  readonly host: Host;
  spawn(name: string, body: Gen<void>, lane?: string): number;
}

/** A concurrent program: builds its shared state and spawns its initial tasks. Re-run for every execution. */
export type Program = (ctx: ProgramContext) => void;

const LIVELOCK_WINDOW = 1000;
const NO_OVERRIDES: ReadonlyMap<string, Function> = new Map();

/**
 * The deterministic runtime: steps generator tasks one access at a time, asks
 * the scheduler only at real choice points, and records the choices so that a
 * ReplayScheduler reproduces the run exactly.
 */
export class Runtime implements Host {
  readonly tasks: Task[] = [];
  readonly env = new Map<string, unknown>();
  readonly overrides: ReadonlyMap<string, Function>;
  readonly choices: number[] = [];
  readonly violations: Violation[] = [];
  readonly trace: StepRecord[] | null;
  readonly stats: RunStats = { steps: 0, tasks: 0, choicePoints: 0, maxEnabled: 0 };
  current: Task = setupTask();
  stepIndex = -1;
  stopped = false;
  /** True while this runtime is the active host (inside start, execute or runToEnd). */
  private hosting = false;

  private readonly objectNames: string[] = [];
  private readonly checks: { name: string; check: () => void }[] = [];
  private readonly scheduler: Scheduler;
  private readonly observer: RunObserver | undefined;
  private readonly stopOnViolation: boolean;
  private readonly maxSteps: number;
  private livelockSnapshot: number[] | null = null;
  private readonly scratch: Task[] = [];
  /** enabledBufs[n]: the array enabled() returns when n tasks are enabled. */
  private readonly enabledBufs: (Task[] | undefined)[] = [];

  constructor(opts: RunOptions) {
    this.scheduler = opts.scheduler;
    this.observer = opts.observer;
    this.overrides = opts.overrides ?? NO_OVERRIDES;
    for (const [k, v] of opts.env ?? []) this.env.set(k, v);
    this.trace = opts.record ? [] : null;
    this.stopOnViolation = opts.stopOnViolation ?? true;
    this.maxSteps = opts.maxSteps ?? 100_000;
    this.coverage = opts.coverage === true ? new Set() : null;
    BEACON.current?.run();
  }

  readonly coverage: Set<string> | null;

  // ---- Host -------------------------------------------------------------

  newObject(name: string): number {
    this.objectNames.push(name);
    return this.objectNames.length - 1;
  }

  objectName(id: number): string {
    return this.objectNames[id] ?? `#${id}`;
  }

  private keep: ((invariant: string) => boolean) | null = null;
  /** Overrides called in this run. */
  readonly overridesRan = new Set<string>();

  overrideRan(name: string): void {
    this.overridesRan.add(name);
  }

  filterReports(keep: (invariant: string) => boolean): void {
    const prev = this.keep;
    this.keep = prev === null ? keep : (i) => prev(i) && keep(i);
  }

  report(v: ViolationInput): void {
    if (this.stopped && this.stopOnViolation) return;
    if (
      this.keep !== null &&
      v.invariant !== "model-error" &&
      v.invariant !== "user-error" &&
      !this.keep(v.invariant)
    )
      return;
    const t = this.current;
    const f = t.frames;
    this.violations.push({
      invariant: v.invariant,
      message: v.message,
      task: t.id,
      taskName: t.name,
      step: this.stepIndex,
      fn: f.length === 0 ? "<task>" : f[f.length - 1],
      details: v.details ?? {},
    });
    if (this.stopOnViolation) this.stopped = true;
  }

  addCheck(name: string, check: () => void): void {
    this.checks.push({ name, check });
  }

  cost(kind: string, units: number): void {
    const recs = this.current.recorders;
    if (recs !== undefined) for (const r of recs) r.cost(kind, units);
  }

  // ---- driving ------------------------------------------------------------

  /** Run the program's setup: build state and spawn the initial tasks. */
  start(program: Program): void {
    const prev = setActiveHost(this);
    const wasHosting = this.hosting;
    this.hosting = true;
    const beacon = BEACON.current;
    beacon?.enter(this.current, -1);
    try {
      program({ host: this, spawn: (name, body, lane) => this.spawn(name, body, lane ?? name, -1) });
    } catch (e) {
      // The user's setup code failed: their error, reported at step -1. Anything else is ours.
      if (e instanceof ReplayMismatch || !errorOrigin(e).user) throw e;
      this.reportError(e);
    } finally {
      beacon?.leave();
      this.hosting = wasHosting;
      setActiveHost(prev);
    }
  }

  spawn(name: string, body: Gen<void>, lane: string, parent: number): number {
    // A task spawned without a name still needs one in traces, race diagrams and reports.
    if (typeof name !== "string" || name.trim() === "") {
      name = `task${this.tasks.length}`;
      if (typeof lane !== "string" || lane.trim() === "") lane = name;
    }
    if (!isGenerator(body)) {
      throw new UserCodeError(
        `spawn("${name}", …): a task body must be a generator object, such as myTask(args), not ${describeValue(body)}`,
      );
    }
    const task: Task = {
      id: this.tasks.length,
      name,
      parent,
      lane,
      gen: body,
      pending: null,
      done: false,
      steps: 0,
      frames: [],
      local: undefined,
    };
    this.tasks.push(task);
    this.scratch.push(task);
    this.stats.tasks++;
    this.observer?.onSpawn?.(task, parent);
    // Prime: run the task up to its first shared access.
    this.advance(task, undefined);
    return task.id;
  }

  /** Tasks that may take a step now. The returned array is reused between calls. */
  enabled(): Task[] {
    // Shrinking an array through its length is a slow runtime call, so the
    // tasks are gathered in a scratch array as long as the task list, then
    // copied into a buffer kept per count, whose length never changes.
    const scratch = this.scratch;
    const ts = this.tasks;
    const len = ts.length;
    let n = 0;
    for (let i = 0; i < len; i++) {
      const t = ts[i];
      const op = t.pending;
      if (op === null) continue;
      const en = op.enabled;
      if (en !== undefined && !en()) continue;
      scratch[n++] = t;
    }
    const out = this.enabledBufs[n];
    if (out === undefined) return this.newEnabledBuf(n);
    for (let i = 0; i < n; i++) out[i] = scratch[i];
    return out;
  }

  private newEnabledBuf(n: number): Task[] {
    const out = this.scratch.slice(0, n);
    while (this.enabledBufs.length <= n) this.enabledBufs.push(undefined);
    this.enabledBufs[n] = out;
    return out;
  }

  /** Execute one step of `task` (which must be enabled), then run the checks. */
  execute(task: Task, enabled: readonly Task[]): void {
    if (this.hosting) {
      this.step(task, enabled);
      return;
    }
    const prevHost = setActiveHost(this);
    this.hosting = true;
    try {
      this.step(task, enabled);
    } finally {
      this.hosting = false;
      setActiveHost(prevHost);
    }
  }

  /** execute() with this runtime already the active host. */
  private step(task: Task, enabled: readonly Task[]): void {
    const op = task.pending!;
    const index = ++this.stepIndex;
    const obs = this.observer;
    if (obs !== undefined && obs.onStep !== undefined) obs.onStep(index, task, op, enabled);
    if (this.trace !== null) {
      this.trace.push({ task: task.id, kind: op.kind, obj: op.obj, fn: op.fn, step: op.step });
    }
    task.steps++;
    this.stats.steps++;
    if (op.awaits !== undefined && !this.checkAwaits(op)) return;
    if (op.completes === true && !this.complete(op)) return;
    this.resume(task, undefined);
    const checks = this.checks;
    if (checks.length !== 0 && !this.stopped) {
      const prev = this.current;
      for (let i = 0; i < checks.length; i++) {
        checks[i].check();
        if (this.stopped) break;
      }
      this.current = prev;
    }
  }

  /** Objects whose completion write (AccessOp.completes) has run. */
  private readonly completed = new Set<number>();

  /** A completion is a one-shot event: completing an object twice breaks what waits rely on. */
  private complete(op: AccessOp): boolean {
    if (this.completed.has(op.obj)) {
      this.report({
        invariant: "model-error",
        message: `${op.fn}: "${op.step}" completes ${this.objectName(op.obj)}, which was already completed`,
      });
      this.stopped = true;
      return false;
    }
    this.completed.add(op.obj);
    return true;
  }

  /** A blocking op declared that it waits for these completions: hold the model to it. */
  private checkAwaits(op: AccessOp): boolean {
    for (const o of op.awaits!) {
      if (!this.completed.has(o)) {
        this.report({
          invariant: "model-error",
          message: `${op.fn}: "${op.step}" ran before ${this.objectName(o)} was completed, which it declares it awaits`,
        });
        this.stopped = true;
        return false;
      }
    }
    return true;
  }

  /** Resume `task` with `value` until its next shared access (or its end). */
  private advance(task: Task, value: unknown): void {
    if (this.hosting) {
      this.resume(task, value);
      return;
    }
    const prevHost = setActiveHost(this);
    this.hosting = true;
    try {
      this.resume(task, value);
    } finally {
      this.hosting = false;
      setActiveHost(prevHost);
    }
  }

  /** advance() with this runtime already the active host. */
  private resume(task: Task, value: unknown): void {
    const prevTask = this.current;
    this.current = task;
    // A watchdog in another thread learns that the task's own code runs now, until it yields.
    const beacon = BEACON.current;
    if (beacon !== null) beacon.enter(task, this.stepIndex);
    try {
      let v = value;
      for (;;) {
        const r = task.gen.next(v);
        if (r.done) {
          task.done = true;
          task.pending = null;
          return;
        }
        const y = r.value;
        if (y.kind === "spawn") {
          v = this.spawn(y.name, y.body, y.lane ?? y.name, task.id);
          this.current = task;
        } else if (y.kind === "choose") {
          v = this.chooseValue(y, task);
        } else {
          task.pending = y;
          return;
        }
      }
    } catch (e) {
      task.done = true;
      task.pending = null;
      if (e instanceof ReplayMismatch) throw e;
      if (e instanceof TaskAbort) {
        this.report({ invariant: "BUG", message: e.message });
      } else {
        this.reportError(e);
      }
    } finally {
      this.current = prevTask;
      if (beacon !== null) beacon.leave();
    }
  }

  /**
   * An exception escaped model code. Thrown in the user's code (or a UserCodeError): "user-error",
   * located in their file. Otherwise "model-error": a bug in tdplab or in a model it ships.
   */
  private reportError(e: unknown): void {
    const err = e instanceof Error ? e : new Error(String(e));
    const origin = errorOrigin(err);
    const stack = (err.stack ?? "").split("\n").slice(1, 6).join("\n");
    if (origin.user) {
      const at = origin.where === null ? "" : ` at ${origin.where}`;
      // Report it in the model function it was thrown in (whose frame has been popped by now).
      const fn = (err as { [THROWN_IN]?: string })[THROWN_IN];
      const frames = this.current.frames;
      if (fn !== undefined) frames.push(fn);
      this.report({
        invariant: "user-error",
        message: `error in your module${at}: ${err.name}: ${err.message}`,
        details: { where: origin.where, stack },
      });
      if (fn !== undefined) frames.pop();
    } else {
      this.report({ invariant: "model-error", message: `${err.name}: ${err.message}`, details: { stack } });
    }
    this.stopped = true;
  }

  private chooseValue(op: ChooseOp, task: Task): number {
    if (op.n <= 1) return 0;
    const v = this.scheduler.pickValue(op.n, op, task);
    this.choices.push(v);
    BEACON.current?.choice(v);
    this.stats.choicePoints++;
    this.observer?.onChoice?.(this.stepIndex, task, op, op.n, v);
    return v;
  }

  /** Drive the run to completion (or to the first violation, or the step bound). */
  runToEnd(): void {
    const prevHost = setActiveHost(this);
    const wasHosting = this.hosting;
    this.hosting = true;
    try {
      this.drive();
    } finally {
      this.hosting = wasHosting;
      setActiveHost(prevHost);
    }
  }

  private drive(): void {
    const stats = this.stats;
    const scheduler = this.scheduler;
    const choices = this.choices;
    while (!this.stopped) {
      const enabled = this.enabled();
      const n = enabled.length;
      if (n === 0) {
        this.checkDeadlock();
        return;
      }
      if (stats.steps >= this.maxSteps) {
        this.reportLivelock();
        return;
      }
      if (stats.steps === this.maxSteps - LIVELOCK_WINDOW) {
        this.livelockSnapshot = this.tasks.map((t) => t.steps);
      }
      if (n > stats.maxEnabled) stats.maxEnabled = n;
      let task: Task;
      if (n === 1) {
        task = enabled[0];
      } else {
        task = scheduler.pickTask(enabled, this.stepIndex + 1);
        choices.push(task.id);
        const beacon = BEACON.current;
        if (beacon !== null) beacon.choice(task.id);
        stats.choicePoints++;
      }
      this.step(task, enabled);
    }
  }

  private checkDeadlock(): void {
    const blocked = this.tasks.filter((t) => !t.done);
    if (blocked.length === 0) return;
    const describe = this.env.get("describeObject") as ((id: number) => string) | undefined;
    const parts = blocked.map((t) => {
      const op = t.pending!;
      const what = describe ? describe(op.obj) : this.objectName(op.obj);
      return { task: t.id, name: t.name, fn: op.fn, step: op.step, waitsOn: what };
    });
    this.current = setupTask();
    this.report({
      invariant: "deadlock",
      message: `${parts.map((p) => `${p.name} waits in ${p.fn} (${p.step}) on ${p.waitsOn}`).join("; ")}`,
      details: { blocked: parts },
    });
  }

  private reportLivelock(): void {
    const snap = this.livelockSnapshot;
    let worst: Task | null = null;
    let best = -1;
    for (const t of this.tasks) {
      if (t.done) continue;
      const d = t.steps - (snap?.[t.id] ?? 0);
      if (d > best) {
        best = d;
        worst = t;
      }
    }
    this.current = setupTask();
    const w = worst!;
    // With the steps recorded (a replay, a trace), say whether the run ends in a repeating cycle:
    // evidence of a livelock, not a proof (lasso.ts says why).
    const lasso = this.trace === null ? null : findLasso(this.trace);
    const cycle =
      lasso === null
        ? ""
        : `; suspected livelock: from step ${lasso.fromStep} one cycle of ${lasso.period} steps (${lasso.tasks.map((t) => this.tasks[t]?.name ?? t).join(", ")}, in ${lasso.fns.join(", ")}) repeats ${lasso.repeats} times`;
    this.report({
      invariant: "livelock",
      message: `possible livelock: the run passed ${this.maxSteps} steps; ${w.name} took ${best} of the last ${LIVELOCK_WINDOW}, last in ${w.pending?.fn ?? "?"} (${w.pending?.step ?? "?"})${cycle}`,
      details: { task: w.id, name: w.name, steps: this.maxSteps, ...(lasso === null ? {} : { lasso }) },
    });
  }

  result(): RunResult {
    return {
      status: this.violations.length === 0 ? "ok" : "violation",
      violations: this.violations,
      choices: this.choices,
      trace: this.trace,
      stats: { ...this.stats },
      taskNames: this.tasks.map((t) => t.name),
      taskLanes: this.tasks.map((t) => t.lane),
      objectNames: this.objectNames.slice(),
      overridesRan: [...this.overridesRan],
      ...(this.coverage === null ? {} : { functionsRun: [...this.coverage] }),
    };
  }
}

/** Run `program` once under `opts.scheduler` and return what happened, as data. */
export function runProgram(program: Program, opts: RunOptions): RunResult {
  const rt = new Runtime(opts);
  rt.start(program);
  if (!rt.stopped) rt.runToEnd();
  return rt.result();
}
