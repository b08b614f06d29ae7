import type { AccessOp, ChooseOp } from "../op.js";
import { SplitMix64 } from "../rng.js";
import { type Program, Runtime } from "../runtime.js";
import type { Scheduler } from "../scheduler.js";
import type { Task } from "../task.js";
import type { Violation } from "../violation.js";
import {
  type CostModel,
  classifyObject,
  hostCost,
  type ObjectClass,
  opCost,
  withCosts,
} from "./cost-model.js";
import { EventHeap } from "./event-heap.js";
import { CpuAccounting, type SimCpuStats, type SimWakeLatency, summariseLatencies } from "./occupancy.js";
import { RcuClock } from "./rcu-clock.js";
import type { SimKernelView, SimPreemption } from "./view.js";

/**
 * The timed simulator: runs the same tasks as the checker (the same Runtime executes every step)
 * on `cpus` host CPUs in virtual nanoseconds. Each task is bound to a CPU or free; a CPU runs one
 * task at a time; a step costs what the cost model says for its op plus what the model charged
 * through host().cost(); a blocked task either spins on its CPU or sleeps off it; need_resched()
 * is answered from the run queues; the preemption model decides whether the CPU can be taken from
 * a running task. Events are CPU decision points in a (time, seq) heap, so a run is deterministic.
 *
 * Time semantics: a step's access (and the atomic code after it) takes effect at the step's start;
 * its cost is how long the CPU is busy before the task's next access. So a lock is held from the
 * start of the acquiring step to the start of the releasing one.
 */

export interface SimOptions {
  readonly cpus: number;
  /**
   * CPU a task (by name) is bound to, or null for a task any CPU may run (a kworker of an unbound
   * workqueue, say). `spawnerCpu` is the CPU of the task that created it (null for the program's
   * first tasks): an RCU callback, say, runs where call_rcu() queued it. Default: all free. A free
   * task that becomes runnable is taken by whichever idle CPU looks at it first (event order), unless
   * `wakeCpu` names one.
   */
  readonly binding?: (taskName: string, spawnerCpu: number | null) => number | null;
  /**
   * For a free task: the CPU it first runs on, where the kernel's select_task_rq() put it when it
   * was woken; after its first step any CPU may run it. Null or absent: wherever event order puts it.
   */
  readonly wakeCpu?: (taskName: string) => number | null;
  /**
   * Where a free task that becomes runnable goes. "select_idle_sibling" (the default, after
   * select_idle_sibling() in kernel/sched/fair.c, v6.6): its previous CPU (for a task that never ran,
   * the CPU of the task that spawned it) if that CPU is idle; else the first idle CPU of that CPU's
   * last-level cache, scanning upwards from it; else it stays queued on its previous CPU, where it
   * counts as a waiter for that CPU's slice and wakeup preemption, until that CPU reschedules or a
   * CPU of the same LLC goes idle and pulls it (newidle balance); an idle CPU of another LLC pulls it
   * at the next tick (the nohz idle-balance kick). A task with no previous CPU (the program's first
   * tasks) goes to whichever idle CPU looks first. "first-idle": every free task is handled that way,
   * and a runnable free task is a waiter on every CPU (the model before select_idle_sibling).
   */
  readonly wakePlacement?: "select_idle_sibling" | "first-idle";
  /** CPUs per last-level cache: CPUs [k*llcCpus, (k+1)*llcCpus) share one. Default: all of them. */
  readonly llcCpus?: number;
  /**
   * Scheduling priority of a task (by name); higher runs first. Default 0 for every task (all CFS at
   * one nice level). A task that becomes runnable on a CPU whose current task has a lower priority
   * sets TIF_NEED_RESCHED there at once (wakeup preemption, as for a SCHED_FIFO task waking on a CPU
   * running a CFS one): with full preemption the CPU switches at its next preemptible step, otherwise
   * at the running task's next need_resched() check. A task of higher priority is never made to give
   * the CPU up to a lower one at the end of a slice. Nothing inherits a priority: a kworker runs at
   * what the scenario gives it, whoever queued its work.
   */
  readonly priority?: (taskName: string) => number;
  readonly preemption: SimPreemption;
  readonly costs?: Partial<CostModel>;
  /** Bound on processed events; reaching it ends the run with status "event-limit". */
  readonly maxEvents?: number;
  /**
   * Asked every STOP_EVERY events; true ends the run there with status "interrupted" (a Ctrl-C
   * must not wait for the end of a run that takes seconds). Must be cheap and side-effect free.
   */
  readonly stop?: () => boolean;
  /** Seed of the grace-period lengths and of data choices other than need_resched. */
  readonly seed?: bigint | number;
  readonly overrides?: ReadonlyMap<string, Function>;
  /** Entries the run's `host().env` starts with (RunOptions.env). */
  readonly env?: ReadonlyMap<string, unknown>;
  /** The kernel layer's view of tasks (src/kernel/sim-view.ts kernelView). */
  readonly kernel: SimKernelView;
  /** Record every step and every wait with its virtual times (SimResult.timeline). Costs memory. */
  readonly timeline?: boolean;
  /** Called after every step with its span (for scenarios that measure one task's moments). */
  readonly onStep?: (span: SimStepSpan, taskName: string) => void;
}

/** One executed step on the virtual-time axis. */
export interface SimStepSpan {
  readonly task: number;
  readonly cpu: number;
  readonly startNs: number;
  readonly endNs: number;
  readonly kind: string;
  readonly fn: string;
  readonly step: string;
  readonly objName: string;
  /** Steps it stands for (a bulk access stands for a whole recorded block). */
  readonly weight: number;
}

/**
 * A stretch during which a task was alive but not executing: spinning on its CPU for an access that
 * was not enabled, sleeping off-CPU, or runnable and waiting for a CPU.
 */
export interface SimWaitSpan {
  readonly task: number;
  /** The CPU it spun on, or -1. */
  readonly cpu: number;
  readonly startNs: number;
  readonly endNs: number;
  readonly kind: "spin" | "sleep" | "runqueue";
  /** The access it was waiting to make. */
  readonly fn: string;
  readonly step: string;
  readonly objName: string;
}

export interface SimTimeline {
  readonly steps: SimStepSpan[];
  readonly waits: SimWaitSpan[];
}

export interface SimTaskStats {
  readonly name: string;
  readonly lane: string;
  /** The CPU it is bound to, or null. */
  readonly cpu: number | null;
  /** Time spent executing its own steps. */
  readonly busyNs: number;
  /** Time alive and not executing: blocked, waiting for a CPU, or sleeping (spawn to end). */
  readonly blockedNs: number;
  readonly spawnNs: number;
  /** Start of its first step (null if it never ran). */
  readonly firstStepNs: number | null;
  /** End of its last step. */
  readonly lastStepNs: number | null;
  /** When it finished, or null if it did not. */
  readonly doneNs: number | null;
  readonly steps: number;
  /** Its scheduling priority (SimOptions.priority). */
  readonly priority: number;
  /** The CPUs it executed steps on, ascending. */
  readonly cpusUsed: readonly number[];
  /** Wake-up latencies of its timer sleeps (AccessOp.delayNs), or null if it slept on none. */
  readonly wakeLatency: SimWakeLatency | null;
}

export interface SimStats {
  steps: number;
  contextSwitches: number;
  preemptions: number;
  needReschedAsked: number;
  needReschedTrue: number;
  gracePeriods: number;
  /** CPU time spent switching tasks on involuntary switches (schedule() is charged to its caller). */
  switchNs: number;
  /** need_resched() answers that were true only because RCU wanted a quiescent state (rcu_urgent_qs). */
  rcuForcedResched: number;
  /** Bulk accesses executed (each stands for a recorded block of steps). */
  bulkSteps: number;
  /**
   * Times the heap ran dry while a task could have run: a wait whose enabling access was not in its
   * declared footprint. The run goes on (every CPU is woken), but a non-zero count means a model op
   * under-declares what it reads.
   */
  strayWakes: number;
  /** Cache lines of shared (non-SPTE) words moved between CPUs (CostModel.cacheLineTransferNs). */
  lineTransfers: number;
  /** CPU time spent moving those lines and queueing for them behind other CPUs. */
  lineNs: number;
}

export interface SimResult {
  readonly status: "ok" | "violation" | "deadlock" | "event-limit" | "interrupted";
  readonly virtualNs: number;
  readonly perTask: readonly SimTaskStats[];
  /**
   * Decision events processed, counting a bulk access as the steps it stands for, so that a run on a
   * summarised tree counts what the same run on the materialised tree would.
   */
  readonly events: number;
  readonly stats: SimStats;
  readonly violations: readonly Violation[];
  /** Tasks that never finished, by name. */
  readonly unfinished: readonly string[];
  /** Present when SimOptions.timeline was set. */
  readonly timeline?: SimTimeline;
  /** RCU CPU stall warnings: a grace period held up by a CPU for CostModel.rcuStallNs. */
  readonly rcuStalls: readonly RcuStall[];
  /** Overrides (SimOptions.overrides) that were called in this run. */
  readonly overridesRan: readonly string[];
  /** Per host CPU: how busy it was (top's view of the run). */
  readonly perCpu: readonly SimCpuStats[];
}

/** An RCU CPU stall warning, as the kernel prints it: which CPUs held up a grace period since when. */
export interface RcuStall {
  readonly atNs: number;
  readonly gpStartNs: number;
  readonly cpus: readonly number[];
}

/** A grace-period wait that a CPU without a quiescent state since `start` is holding up. */
interface HeldGp {
  readonly task: Task;
  readonly start: number;
  /** When the grace period would end without the holdout. */
  readonly end: number;
}

interface TState {
  readonly bound: number | null;
  /** It is a softirq (SimKernelView.runsAsSoftirq), run on its bound CPU ahead of that CPU's task. */
  readonly softirq: boolean;
  /** The CPU it last executed a step on (before its first step: its spawner's), or -1. */
  prevCpu: number;
  /** For a free task: the CPU it must first run on (SimOptions.wakeCpu), or null. */
  readonly wakeCpu: number | null;
  /** CPU it is on, or -1. */
  cpu: number;
  /** Earliest time its pending op may execute. */
  readyAt: number;
  /** When it last became runnable without a CPU (FIFO order of the run queue). */
  runnableSince: number;
  spawnNs: number;
  firstStepNs: number | null;
  lastStepNs: number | null;
  doneNs: number | null;
  busyNs: number;
  steps: number;
  /** It called schedule(): give the CPU up at the next step boundary if someone else wants it. */
  yieldReq: boolean;
  readonly priority: number;
  /** CPUs it executed steps on. */
  readonly cpusUsed: Set<number>;
  /** Expiry of the timer it is sleeping on (AccessOp.delayNs), or null. */
  timerAt: number | null;
  /** Wake-up latency of every timer it slept on. */
  readonly wakeLatencies: number[];
  /** Open wait span (timeline only). */
  waitKind: SimWaitSpan["kind"] | null;
  waitStart: number;
  waitCpu: number;
}

interface Cpu {
  curr: Task | null;
  /** The softirq running on it between two steps of `curr` (or of nothing, when idle), or null. */
  irq: Task | null;
  /** Softirq tasks bound to it that are not done. */
  softirqs: Task[];
  freeAt: number;
  switchedInAt: number;
  /** Earliest pending decision event, or Infinity. */
  wakeAt: number;
}

/** The Runtime with the simulator's pricing hooks: host().cost() and page-table allocations. */
class SimRuntime extends Runtime {
  constructor(
    private readonly sim: Simulator,
    scheduler: Scheduler,
    overrides: ReadonlyMap<string, Function> | undefined,
    maxSteps: number,
    env: ReadonlyMap<string, unknown> | undefined,
  ) {
    super({ scheduler, overrides, maxSteps, stopOnViolation: true, env });
  }

  override cost(kind: string, units: number): void {
    super.cost(kind, units);
    this.sim.charge(this.current, hostCost(this.sim.costs, kind, units), kind === "schedule");
  }

  override newObject(name: string): number {
    const id = super.newObject(name);
    this.sim.classes[id] = classifyObject(name);
    return id;
  }
}

/** Answers need_resched() from the simulator, other data choices from a seeded generator. */
class SimScheduler implements Scheduler {
  constructor(
    private readonly sim: Simulator,
    private readonly rng: SplitMix64,
  ) {}
  pickTask(): Task {
    throw new Error("the simulator picks tasks itself");
  }
  pickValue(n: number, op: ChooseOp, task: Task): number {
    if (op.key === "need_resched" && n === 2) return this.sim.answerNeedResched(task) ? 1 : 0;
    return this.rng.nextInt(n);
  }
}

class Simulator {
  readonly costs: CostModel;
  readonly classes: ObjectClass[] = [];
  readonly rt: SimRuntime;
  readonly stats: SimStats = {
    steps: 0,
    contextSwitches: 0,
    preemptions: 0,
    needReschedAsked: 0,
    needReschedTrue: 0,
    gracePeriods: 0,
    switchNs: 0,
    rcuForcedResched: 0,
    bulkSteps: 0,
    strayWakes: 0,
    lineTransfers: 0,
    lineNs: 0,
  };
  /** Per shared word: the CPU that touched it last, the CPU that wrote it last (-1: read since), and until when it is busy. */
  private readonly lines = new Map<number, { last: number; owner: number; busyUntil: number }>();
  private readonly view: SimKernelView;
  private readonly ts: TState[] = [];
  private readonly cpus: Cpu[] = [];
  private readonly heap = new EventHeap();
  private readonly rcu: RcuClock;
  /**
   * Non-preemptible RCU (PREEMPT_NONE/VOLUNTARY): a CPU running kernel code is a reader until it
   * passes a quiescent state (a context switch, schedule(), idle), so it can hold a grace period up;
   * RCU then forces one through need_resched. With full preemption, readers are the explicit
   * read-side sections the model already waits for.
   */
  private readonly cpuHoldouts: boolean;
  /** Per CPU: when it last passed a quiescent state. */
  private readonly lastQs: number[] = [];
  private readonly heldGps: HeldGp[] = [];
  /** Per task: since when it has had callbacks queued in its read-side section (a grace period is wanted). */
  private readonly cbDemand = new Map<number, number>();
  private readonly rcuStalls: RcuStall[] = [];
  private readonly stallsReported = new Set<number>();
  private now = 0;
  /** Cost charged through hooks during the step being executed. */
  private charged = 0;
  private events = 0;
  /** Steps beyond one that bulk accesses stood for (added to the event count). */
  private bulkExtra = 0;
  /** Tasks not yet done, in id order; rebuilt when one finishes. */
  private live: Task[] = [];
  private liveStale = false;
  /** Tasks whose pending access was not enabled, by the objects that access declared. */
  private readonly blockedOn = new Map<number, Set<Task>>();
  private readonly timeline: SimTimeline | null;
  private readonly acct: CpuAccounting;

  constructor(private readonly opts: SimOptions) {
    if (!(Number.isInteger(opts.cpus) && opts.cpus >= 1)) throw new RangeError(`cpus = ${opts.cpus}`);
    this.costs = withCosts(opts.costs);
    this.view = opts.kernel;
    const seed = opts.seed ?? 0;
    this.rcu = new RcuClock(this.costs.rcuGracePeriodNs, seed);
    const maxEvents = opts.maxEvents ?? 10_000_000;
    this.rt = new SimRuntime(
      this,
      new SimScheduler(this, new SplitMix64(BigInt.asUintN(64, BigInt(seed)) ^ 0x5eedn)),
      opts.overrides,
      Number.MAX_SAFE_INTEGER,
      opts.env,
    );
    this.maxEvents = maxEvents;
    this.timeline = opts.timeline ? { steps: [], waits: [] } : null;
    for (let i = 0; i < opts.cpus; i++) {
      this.cpus.push({
        curr: null,
        irq: null,
        softirqs: [],
        freeAt: 0,
        switchedInAt: 0,
        wakeAt: Number.POSITIVE_INFINITY,
      });
      this.lastQs.push(0);
    }
    this.cpuHoldouts = opts.preemption !== "full";
    this.acct = new CpuAccounting(opts.cpus);
    this.selectIdle = (opts.wakePlacement ?? "select_idle_sibling") === "select_idle_sibling";
    const llc = opts.llcCpus ?? opts.cpus;
    if (!(Number.isInteger(llc) && llc >= 1)) throw new RangeError(`llcCpus = ${llc}`);
    this.llcCpus = llc;
  }
  private readonly selectIdle: boolean;
  /** Free tasks whose wake-up placement waits for an armTimer() event. */
  private timers: { readonly t: Task; readonly at: number }[] = [];
  private readonly llcCpus: number;
  private readonly maxEvents: number;

  /** A cost hook fired while `task` runs: add it to the step being executed. */
  charge(task: Task, ns: number, schedules: boolean): void {
    if (task.id < 0) return; // setup is free
    this.charged += ns;
    if (schedules) {
      const st = this.ts[task.id];
      if (st !== undefined) st.yieldReq = true;
    }
  }

  /**
   * need_resched() for the task running now: TIF_NEED_RESCHED is set by the tick once the running
   * task has used its slice while another task waits for this CPU.
   */
  answerNeedResched(task: Task): boolean {
    this.stats.needReschedAsked++;
    const st = this.ts[task.id];
    this.checkStall();
    let v = st !== undefined && st.cpu >= 0 && this.reschedDue(st.cpu, task);
    if (!v && st !== undefined && st.cpu >= 0 && this.rcuUrgentQs(st.cpu)) {
      v = true;
      this.stats.rcuForcedResched++;
    }
    if (v) this.stats.needReschedTrue++;
    return v;
  }

  // ---- RCU quiescent states (non-preemptible kernels) ------------------------------------------

  /**
   * rcu_urgent_qs: a grace period has been wanted since D, this CPU has passed no quiescent state
   * since, and the first tick after D + rcuUrgentQsNs has come: that tick sets TIF_NEED_RESCHED.
   */
  private rcuUrgentQs(c: number): boolean {
    const urgent = this.costs.rcuUrgentQsNs;
    if (!this.cpuHoldouts || urgent === 0) return false;
    const since = this.gpWantedSince();
    if (since === null || this.lastQs[c] >= since) return false;
    const tick = this.costs.tickNs;
    return this.now >= Math.ceil((since + urgent) / tick) * tick;
  }

  /** The start of the oldest grace period still wanted, or null. */
  private gpWantedSince(): number | null {
    let since: number | null = null;
    for (const d of this.cbDemand.values()) if (since === null || d < since) since = d;
    for (const g of this.heldGps) if (since === null || g.start < since) since = g.start;
    return since;
  }

  /** CPUs running a task (other than `except`) with no quiescent state since `start`. */
  private holdouts(start: number, except: Task | null): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.cpus.length; c++) {
      const cur = this.cpus[c].curr;
      if (cur !== null && cur !== except && !cur.done && this.lastQs[c] < start) out.push(c);
    }
    return out;
  }

  /** CPU c passed a quiescent state now: release the grace periods only it was holding up. */
  private quiescent(c: number): void {
    if (!this.cpuHoldouts) return;
    this.lastQs[c] = this.now;
    this.releaseHeld();
  }

  /** Let the held grace periods that no CPU holds up any more end. */
  private releaseHeld(): void {
    this.checkStall();
    for (let i = this.heldGps.length - 1; i >= 0; i--) {
      const g = this.heldGps[i];
      if (this.holdouts(g.start, g.task).length > 0) continue;
      this.heldGps.splice(i, 1);
      const st = this.ts[g.task.id];
      st.readyAt = Math.max(g.end, this.now);
      if (st.cpu >= 0) this.wake(st.cpu, Math.max(st.readyAt, this.cpus[st.cpu].freeAt));
      else this.wakeIdleFor(g.task, st.readyAt);
    }
  }

  /**
   * The stall warning of the oldest grace period still wanted, once it has been held up by a CPU for
   * rcuStallNs: recorded once per grace period, at the time the kernel would print it.
   */
  private checkStall(): void {
    if (!this.cpuHoldouts) return;
    const since = this.gpWantedSince();
    if (since === null || this.now < since + this.costs.rcuStallNs || this.stallsReported.has(since)) return;
    const cpus = this.holdouts(since, null);
    if (cpus.length === 0) return;
    this.stallsReported.add(since);
    this.rcuStalls.push({ atNs: since + this.costs.rcuStallNs, gpStartNs: since, cpus });
  }

  /** After `t`'s step: callbacks it queued in a read-side section want a grace period from now. */
  private noteCallbacks(t: Task): void {
    if (!this.cpuHoldouts) return;
    if (t.done || this.view.queuedCallbacks(t) === 0) this.cbDemand.delete(t.id);
    else if (!this.cbDemand.has(t.id)) this.cbDemand.set(t.id, this.now);
  }

  private reschedDue(c: number, cur: Task): boolean {
    const prio = this.ts[cur.id].priority;
    // Wakeup preemption: a runnable task of higher priority for this CPU wants it now.
    if (this.hasWaiter(c, cur, prio + 1)) return true;
    const { sliceNs, tickNs } = this.costs;
    const due = Math.ceil((this.cpus[c].switchedInAt + sliceNs) / tickNs) * tickNs;
    return this.now >= due && this.hasWaiter(c, cur, prio);
  }

  private eligible(t: Task, c: number): boolean {
    const st = this.ts[t.id];
    const b = st.bound ?? (st.firstStepNs === null ? st.wakeCpu : null);
    return b === null || b === c;
  }

  /** The task could use a CPU now: ready, and not blocked in a sleeping wait. */
  private runnable(t: Task, at: number): boolean {
    if (t.done || t.pending === null) return false;
    const st = this.ts[t.id];
    if (st.cpu >= 0 || st.readyAt > at) return false;
    const op = t.pending;
    return enabledNow(op) || !this.view.sleepsWhenBlocked(op);
  }

  private liveTasks(): readonly Task[] {
    if (this.liveStale) {
      this.live = this.live.filter((t) => !t.done);
      this.liveStale = false;
    }
    return this.live;
  }

  /** Another task of priority `minPrio` or more is queued for CPU c now. */
  private hasWaiter(c: number, cur: Task, minPrio = Number.NEGATIVE_INFINITY): boolean {
    for (const t of this.liveTasks())
      if (
        t !== cur &&
        this.ts[t.id].priority >= minPrio &&
        this.eligible(t, c) &&
        this.runnable(t, this.now) &&
        this.placedFor(t, c, false)
      )
        return true;
    return false;
  }

  // ---- Wake-up placement (SimOptions.wakePlacement) --------------------------------------------

  /** No task and no softirq on CPU c. */
  private idle(c: number): boolean {
    return this.cpus[c].curr === null && this.cpus[c].irq === null;
  }

  /**
   * select_idle_sibling() (kernel/sched/fair.c, v6.6) for runnable free task `t`, asked now: its
   * previous CPU if idle, else the first idle CPU of that CPU's LLC scanning up from it (the scan of
   * select_idle_cpu()), else the previous CPU, whose run queue it stays on. -1: no preference (the
   * placement is off, the task is bound or has a first CPU of its own, or it has never had a CPU).
   */
  private select_idle_sibling(t: Task): number {
    const st = this.ts[t.id];
    if (!this.selectIdle || st.bound !== null || st.prevCpu < 0) return -1;
    if (st.wakeCpu !== null && st.firstStepNs === null) return -1;
    const prev = st.prevCpu;
    if (this.idle(prev)) return prev;
    const base = prev - (prev % this.llcCpus);
    const n = Math.min(this.llcCpus, this.cpus.length - base);
    for (let i = 1; i < n; i++) {
      const o = base + ((prev - base + i) % n);
      if (this.idle(o)) return o;
    }
    return prev;
  }

  /**
   * Whether runnable free task `t` is CPU c's to run now. `pulling` (c is idle and looking for
   * work): a task placed on another idle CPU is not (that CPU is told to look); one queued on a busy
   * CPU is, at once within the LLC (newidle balance) and from the tick after it was queued otherwise.
   * Not pulling (c asks whether someone waits for it): only a task queued on c.
   */
  private placedFor(t: Task, c: number, pulling: boolean): boolean {
    const sel = this.select_idle_sibling(t);
    if (sel < 0 || sel === c) return true;
    if (!pulling) return false;
    if (this.idle(sel)) {
      this.wake(sel, Math.max(this.now, this.cpus[sel].freeAt));
      return false;
    }
    if (Math.floor(sel / this.llcCpus) === Math.floor(c / this.llcCpus)) return true;
    const st = this.ts[t.id];
    return this.now >= this.nextTick(Math.max(st.runnableSince, st.readyAt));
  }

  /**
   * Wake-up placement of free task `t` is due at `at` (its timer expires, or the tick that lets
   * other LLCs pull it comes): an event of a pseudo CPU, which no earlier decision supersedes.
   */
  private armTimer(t: Task, at: number): void {
    this.timers.push({ t, at });
    this.heap.push(at, this.cpus.length);
  }

  /**
   * The pseudo CPU's event at `now`: place every free task whose placement is due and that can run.
   * One that cannot (blocked again) is placed when what blocks it changes.
   */
  private fireTimers(): void {
    if (!this.timers.some((x) => x.at <= this.now)) return;
    const due = this.timers.filter((x) => x.at <= this.now);
    this.timers = this.timers.filter((x) => x.at > this.now);
    for (const { t } of due) if (this.runnable(t, this.now)) this.wakeIdleFor(t, this.now);
  }

  /** The first tick strictly after `t`. */
  private nextTick(t: number): number {
    const tick = this.costs.tickNs;
    return (Math.floor(t / tick) + 1) * tick;
  }

  private wake(c: number, t: number): void {
    const cpu = this.cpus[c];
    if (cpu.wakeAt <= t) return;
    cpu.wakeAt = t;
    this.heap.push(t, c);
  }

  private addTask(t: Task, at: number, spawnerCpu: number | null): void {
    // A softirq runs on the CPU that raised it (the spawner's); the binding decides for one the
    // program started with.
    const softirq = this.view.runsAsSoftirq(this.rt, t);
    const b =
      softirq && spawnerCpu !== null
        ? spawnerCpu
        : (this.opts.binding?.(t.name, spawnerCpu) ?? (softirq ? 0 : null));
    const w = b === null ? (this.opts.wakeCpu?.(t.name) ?? null) : null;
    for (const [what, c] of [
      ["bound to", b],
      ["woken on", w],
    ] as const) {
      if (c !== null && !(Number.isInteger(c) && c >= 0 && c < this.cpus.length)) {
        throw new RangeError(`task ${t.name} ${what} CPU ${c}, but there are ${this.cpus.length}`);
      }
    }
    this.ts[t.id] = {
      bound: b,
      softirq,
      prevCpu: spawnerCpu ?? -1,
      wakeCpu: w,
      priority: this.opts.priority?.(t.name) ?? 0,
      cpusUsed: new Set(),
      timerAt: null,
      wakeLatencies: [],
      cpu: -1,
      readyAt: at,
      runnableSince: at,
      spawnNs: at,
      firstStepNs: null,
      lastStepNs: null,
      doneNs: t.done ? at : null,
      busyNs: 0,
      steps: 0,
      yieldReq: false,
      waitKind: null,
      waitStart: 0,
      waitCpu: -1,
    };
    if (t.done) return;
    if (softirq) this.cpus[b!].softirqs.push(t);
    else this.live.push(t);
    this.openWait(t, "runqueue", at, -1);
    this.arrive(t);
    this.noteBlocked(t);
    this.wakeIdleFor(t, at);
  }

  /**
   * `t` becomes runnable at `at`: wake the CPU it goes to. A softirq's CPU looks then whether busy or
   * not. A free task goes where select_idle_sibling() puts it; if that is a busy CPU (no idle one in
   * its LLC), idle CPUs of other LLCs look at the next tick. Otherwise every idle CPU it may run on
   * looks, and the first to do so takes it.
   */
  private wakeIdleFor(t: Task, at: number): void {
    const st = this.ts[t.id];
    if (st.softirq) {
      const c = st.bound!;
      this.wake(c, Math.max(at, st.readyAt, this.cpus[c].freeAt, this.now));
      return;
    }
    if (this.selectIdle && st.bound === null && at > this.now) {
      // The CPU is chosen when it wakes, from the CPUs idle then.
      this.armTimer(t, at);
      return;
    }
    const sel = this.select_idle_sibling(t);
    if (sel >= 0 && this.idle(sel)) {
      this.wake(sel, Math.max(this.cpus[sel].freeAt, this.now));
      return;
    }
    if (sel >= 0) {
      // Queued on a busy CPU: idle CPUs of other LLCs look at the next tick.
      const tick = this.nextTick(Math.max(st.runnableSince, st.readyAt));
      if (this.now < tick) {
        this.armTimer(t, tick);
        return;
      }
    }
    for (let o = 0; o < this.cpus.length; o++) {
      const cpu = this.cpus[o];
      if (cpu.curr === null && this.eligible(t, o)) this.wake(o, Math.max(at, cpu.freeAt, this.now));
    }
  }

  /** If `t`'s pending access is not enabled, index it under the objects that access declared. */
  private noteBlocked(t: Task): void {
    const op = t.pending;
    if (op === null || enabledNow(op)) return;
    this.indexBlocked(op.obj, t);
    if (op.objs !== undefined) for (const o of op.objs) this.indexBlocked(o, t);
  }

  private indexBlocked(obj: number, t: Task): void {
    const s = this.blockedOn.get(obj);
    if (s === undefined) this.blockedOn.set(obj, new Set([t]));
    else s.add(t);
  }

  /**
   * `obj` was changed: the tasks blocked on it may be enabled now. A task spinning on a CPU makes
   * that CPU look again; a sleeping one wakes the idle CPUs it may run on.
   */
  private changed(obj: number): void {
    const waiters = this.blockedOn.get(obj);
    if (waiters === undefined) return;
    this.blockedOn.delete(obj);
    for (const w of waiters) {
      if (w.done) continue;
      // Still blocked: keep it indexed, or nothing would wake it when the next change comes.
      if (w.pending !== null && !enabledNow(w.pending)) {
        this.noteBlocked(w);
        continue;
      }
      const st = this.ts[w.id];
      if (st.cpu >= 0) this.wake(st.cpu, Math.max(this.now, this.cpus[st.cpu].freeAt));
      else this.wakeIdleFor(w, Math.max(this.now, st.readyAt));
    }
  }

  private openWait(t: Task, kind: SimWaitSpan["kind"], at: number, cpu: number): void {
    if (this.timeline === null) return;
    const st = this.ts[t.id];
    if (st.waitKind === kind) return;
    this.closeWait(t, at);
    st.waitKind = kind;
    st.waitStart = at;
    st.waitCpu = cpu;
  }

  private closeWait(t: Task, at: number): void {
    const st = this.ts[t.id];
    if (this.timeline === null || st.waitKind === null) return;
    if (at > st.waitStart) {
      const op = t.pending;
      this.timeline.waits.push({
        task: t.id,
        cpu: st.waitCpu,
        startNs: st.waitStart,
        endNs: at,
        kind: st.waitKind,
        fn: op?.fn ?? "",
        step: op?.step ?? "",
        objName: op === null ? "" : this.rt.objectName(op.obj),
      });
    }
    st.waitKind = null;
  }

  /** The task reached a new pending op at its readyAt: a grace-period wait pushes readyAt out. */
  private arrive(t: Task): void {
    const op = t.pending;
    if (op === null) return;
    const st = this.ts[t.id];
    if (op.delayNs !== undefined && op.delayNs > 0) {
      st.readyAt += op.delayNs;
      st.timerAt = st.readyAt;
    }
    if (!this.view.isGracePeriodWait(op)) return;
    const before = this.rcu.started;
    const start = st.readyAt;
    st.readyAt = Math.max(st.readyAt, this.rcu.doneAt(st.readyAt));
    this.stats.gracePeriods += this.rcu.started - before;
    // A CPU still running kernel code it entered before the grace period began holds it up until it
    // passes a quiescent state (the waiter's own CPU is about to: it sleeps).
    if (this.cpuHoldouts && this.holdouts(start, t).length > 0) {
      this.heldGps.push({ task: t, start, end: st.readyAt });
      st.readyAt = Number.POSITIVE_INFINITY;
    }
  }

  private switchOut(c: number, t: Task, reason: "yield" | "preempt" | "sleep"): void {
    const cpu = this.cpus[c];
    const st = this.ts[t.id];
    st.cpu = -1;
    st.runnableSince = this.now;
    cpu.curr = null;
    this.acct.off(c, this.now);
    this.quiescent(c);
    this.view.switchedOut(t);
    this.openWait(t, reason === "sleep" ? "sleep" : "runqueue", this.now, -1);
    this.stats.contextSwitches++;
    if (reason === "preempt") this.stats.preemptions++;
    if (reason !== "yield") {
      // schedule() already charged its caller; other switches cost the CPU itself.
      cpu.freeAt = this.now + this.costs.contextSwitchNs;
      this.stats.switchNs += this.costs.contextSwitchNs;
      this.acct.taskless(c, this.costs.contextSwitchNs);
    }
    // Another CPU that is idle may take it.
    if (this.runnable(t, this.now)) this.wakeIdleFor(t, this.now);
    else {
      this.noteBlocked(t);
      if (st.readyAt > this.now) this.wakeIdleFor(t, st.readyAt);
    }
  }

  /**
   * Pick the runnable task of highest priority this CPU may run, the longest-waiting first (ties:
   * lowest id). A free task placed on another idle CPU is left to that CPU (which is told); one
   * queued on a busy CPU is pulled (placedFor).
   */
  private pickNext(c: number): Task | null {
    let best: Task | null = null;
    for (const t of this.liveTasks()) {
      if (!this.eligible(t, c) || !this.runnable(t, this.now) || !this.placedFor(t, c, true)) continue;
      if (best === null) {
        best = t;
        continue;
      }
      const a = this.ts[t.id];
      const b = this.ts[best.id];
      if (a.priority > b.priority || (a.priority === b.priority && a.runnableSince < b.runnableSince))
        best = t;
    }
    return best;
  }

  /** Earliest future readyAt among tasks this CPU may run, for a timer wake-up. */
  private nextReady(c: number): number {
    let m = Number.POSITIVE_INFINITY;
    for (const t of this.liveTasks()) {
      if (t.done || !this.eligible(t, c)) continue;
      const st = this.ts[t.id];
      if (st.cpu < 0 && st.readyAt > this.now && st.readyAt < m) m = st.readyAt;
    }
    return m;
  }

  private decide(c: number): void {
    const cpu = this.cpus[c];
    if (this.now < cpu.freeAt) {
      this.wake(c, cpu.freeAt);
      return;
    }
    if (this.runSoftirq(c)) return;
    let cur = cpu.curr;
    if (cur?.done) {
      cpu.curr = null;
      this.ts[cur.id].cpu = -1;
      this.acct.off(c, this.ts[cur.id].doneNs ?? this.now);
      cur = null;
      this.quiescent(c);
    }
    if (cur !== null) {
      const st = this.ts[cur.id];
      const op = cur.pending!;
      const ready = st.readyAt <= this.now && enabledNow(op);
      if (st.yieldReq) {
        st.yieldReq = false;
        // __schedule() notes a quiescent state whether or not it picks another task.
        if (this.hasWaiter(c, cur)) this.switchOut(c, cur, "yield");
        else this.quiescent(c);
      } else if (this.opts.preemption === "full" && this.view.preemptible(cur) && this.reschedDue(c, cur)) {
        this.switchOut(c, cur, "preempt");
      } else if (!ready && (st.readyAt > this.now || this.view.sleepsWhenBlocked(op))) {
        this.switchOut(c, cur, "sleep");
      }
      if (cpu.curr === null && this.now < cpu.freeAt) {
        this.wake(c, cpu.freeAt);
        return;
      }
    }
    if (cpu.curr === null) {
      const next = this.pickNext(c);
      if (next === null) {
        // An idle CPU is quiescent.
        if (this.heldGps.length > 0 && this.lastQs[c] < this.now) this.quiescent(c);
        const t = this.nextReady(c);
        if (t < Number.POSITIVE_INFINITY) this.wake(c, t);
        return;
      }
      cpu.curr = next;
      cpu.switchedInAt = this.now;
      this.acct.on(c, this.now);
      this.ts[next.id].cpu = c;
      this.quiescent(c);
      this.replaceWoken();
    }
    const t = cpu.curr!;
    if (this.ts[t.id].readyAt <= this.now && enabledNow(t.pending!)) {
      this.step(c, t);
      return;
    }
    this.openWait(t, "spin", this.now, c);
    this.noteBlocked(t);
    if (this.ts[t.id].readyAt > this.now) {
      this.wake(c, this.ts[t.id].readyAt);
    } else if (this.opts.preemption === "full" && this.hasWaiter(c, t)) {
      // Spinning with a waiter behind it: look again at the next tick, when preemption may come.
      const tick = this.costs.tickNs;
      this.wake(c, (Math.floor(this.now / tick) + 1) * tick);
    }
  }

  /**
   * do_softirq() on irq exit: a ready softirq bound to CPU c runs its next step now, ahead of the
   * task on c, which is not switched out (no context switch, no quiescent state) and goes on when
   * the softirq is done or has to wait. Returns whether a softirq step ran.
   */
  private runSoftirq(c: number): boolean {
    const cpu = this.cpus[c];
    let t = cpu.irq;
    if (t === null) {
      // A CPU keeps one pending decision, the earliest: look again when the next softirq is due.
      let due = Number.POSITIVE_INFINITY;
      for (const s of cpu.softirqs) {
        const st = this.ts[s.id];
        if (s.done) continue;
        if (st.readyAt > this.now) due = Math.min(due, st.readyAt);
        else if (enabledNow(s.pending!)) {
          t = s;
          break;
        }
      }
      if (t === null) {
        if (due < Number.POSITIVE_INFINITY) this.wake(c, due);
        return false;
      }
    } else if (!(this.ts[t.id].readyAt <= this.now && enabledNow(t.pending!))) {
      cpu.irq = null;
      const st = this.ts[t.id];
      st.cpu = -1;
      this.noteBlocked(t);
      if (st.readyAt > this.now) this.wake(c, st.readyAt);
      return false;
    }
    const st = this.ts[t.id];
    const idle = cpu.curr === null;
    cpu.irq = t;
    st.cpu = c;
    const before = st.busyNs;
    this.step(c, t);
    // On an idle CPU nothing else accounts for the time; over a task it is the task's CPU time.
    if (idle) this.acct.taskless(c, st.busyNs - before);
    if (t.done) {
      cpu.irq = null;
      st.cpu = -1;
      cpu.softirqs.splice(cpu.softirqs.indexOf(t), 1);
    }
    return true;
  }

  /**
   * A CPU just took a task: free tasks waiting for a CPU may now be placed on another idle one
   * (select_idle_sibling() saw this CPU idle before), so wake where each goes now.
   */
  private replaceWoken(): void {
    if (!this.selectIdle) return;
    for (const t of this.liveTasks()) {
      const st = this.ts[t.id];
      if (st.bound === null && !st.softirq && this.runnable(t, this.now)) this.wakeIdleFor(t, this.now);
    }
  }

  private step(c: number, t: Task): void {
    const cpu = this.cpus[c];
    const st = this.ts[t.id];
    const op = t.pending!;
    const base = this.price(op);
    const weight = op.bulk?.steps ?? 1;
    const before = this.rt.tasks.length;
    this.charged = 0;
    if (st.firstStepNs === null) st.firstStepNs = this.now;
    if (st.timerAt !== null) {
      st.wakeLatencies.push(this.now - st.timerAt);
      st.timerAt = null;
    }
    st.cpusUsed.add(c);
    st.prevCpu = c;
    this.closeWait(t, this.now);
    const line = this.lineDelay(c, op, base);
    this.rt.execute(t, [t]);
    const cost = base + line + this.charged;
    const end = this.now + cost;
    if (this.timeline !== null || this.opts.onStep !== undefined) {
      const span: SimStepSpan = {
        task: t.id,
        cpu: c,
        startNs: this.now,
        endNs: end,
        kind: op.kind,
        fn: op.fn,
        step: op.step,
        objName: this.rt.objectName(op.obj),
        weight,
      };
      this.timeline?.steps.push(span);
      this.opts.onStep?.(span, t.name);
    }
    this.stats.steps += weight;
    if (op.bulk !== undefined) {
      this.stats.bulkSteps++;
      this.bulkExtra += weight - 1;
    }
    st.steps += weight;
    st.busyNs += cost;
    this.acct.executed(c, cost);
    st.lastStepNs = end;
    st.readyAt = end;
    cpu.freeAt = end;
    if (t.done) {
      st.doneNs = end;
      this.liveStale = true;
    } else this.arrive(t);
    this.noteCallbacks(t);
    for (let i = before; i < this.rt.tasks.length; i++) {
      this.addTask(this.rt.tasks[i], end + this.costs.wakeupNs, c);
    }
    this.wake(c, end);
    // The access took effect now: whoever waits for the object it changed may go on from now. Busy
    // CPUs decide again when their own step ends.
    if (op.kind !== "read" && op.kind !== "wait") this.changed(op.obj);
  }

  /**
   * The cache line of `op`'s object, if it is a shared word other than an SPTE: a CPU that needs a
   * line another CPU has (a read of a line written elsewhere, a write of a line touched elsewhere)
   * waits until that CPU's access of it is done, then pays the transfer. Returns the extra time.
   */
  private lineDelay(c: number, op: AccessOp, base: number): number {
    const transfer = this.costs.cacheLineTransferNs;
    if (transfer === 0 || op.bulk !== undefined || op.kind === "wait") return 0;
    if ((this.classes[op.obj] ?? "other") !== "other") return 0;
    const write = op.kind !== "read";
    let l = this.lines.get(op.obj);
    if (l === undefined) {
      l = { last: c, owner: write ? c : -1, busyUntil: this.now + base };
      this.lines.set(op.obj, l);
      return 0;
    }
    const moves = write ? l.last !== c : l.owner >= 0 && l.owner !== c;
    const delay = moves ? Math.max(0, l.busyUntil - this.now) + transfer : 0;
    if (moves) {
      this.stats.lineTransfers++;
      this.stats.lineNs += delay;
    }
    l.last = c;
    if (write) l.owner = c;
    else if (moves) l.owner = -1;
    l.busyUntil = Math.max(l.busyUntil, this.now + delay + base);
    return delay;
  }

  /** What executing `op` costs: its own price, or for a bulk access the prices of its whole block. */
  private price(op: AccessOp): number {
    const b = op.bulk;
    if (b === undefined) return opCost(this.costs, op, this.classes[op.obj] ?? "other");
    let ns = 0;
    for (const p of b.parts) ns += p.count * opCost(this.costs, p.op, this.classes[p.op.obj] ?? "other");
    for (const k of b.costs) ns += hostCost(this.costs, k.kind, k.units);
    return ns;
  }

  /** The heap ran dry: is there a task that could still run? (A safety net for under-declared waits.) */
  private strandedTask(): boolean {
    for (const t of [...this.liveTasks(), ...this.cpus.flatMap((c) => c.softirqs)]) {
      const op = t.pending;
      if (op !== null && enabledNow(op)) return true;
    }
    return false;
  }

  run(program: Program): SimResult {
    const rt = this.rt;
    rt.start(program);
    this.view.prepare(rt, this.opts.preemption);
    for (const t of rt.tasks) this.addTask(t, 0, null);
    for (let c = 0; c < this.cpus.length; c++) this.wake(c, 0);
    let status: SimResult["status"] = "ok";
    while (!rt.stopped) {
      let ev = this.heap.pop();
      if (ev === undefined) {
        this.releaseHeld();
        ev = this.heap.pop();
      }
      if (ev === undefined) {
        if (!this.strandedTask()) break;
        this.stats.strayWakes++;
        for (let c = 0; c < this.cpus.length; c++) this.wake(c, Math.max(this.now, this.cpus[c].freeAt));
        ev = this.heap.pop();
        if (ev === undefined) break;
      }
      if (ev.cpu === this.cpus.length) {
        this.now = ev.time;
        this.fireTimers();
        continue;
      }
      const cpu = this.cpus[ev.cpu];
      if (ev.time !== cpu.wakeAt) continue; // superseded by an earlier decision
      cpu.wakeAt = Number.POSITIVE_INFINITY;
      if (++this.events > this.maxEvents) {
        status = "event-limit";
        break;
      }
      if ((this.events & (STOP_EVERY - 1)) === 0 && this.opts.stop?.() === true) {
        status = "interrupted";
        break;
      }
      this.now = ev.time;
      this.decide(ev.cpu);
    }
    this.checkStall();
    const unfinished = rt.tasks.filter((t) => !t.done).map((t) => t.name);
    for (const t of rt.tasks) if (!t.done) this.closeWait(t, this.now);
    if (status === "interrupted") {
      // Cut short: the run's outcome is unknown, not a deadlock of its unfinished tasks.
    } else if (rt.violations.length > 0) status = "violation";
    else if (status === "ok" && unfinished.length > 0) status = "deadlock";
    let virtualNs = 0;
    for (const st of this.ts) virtualNs = Math.max(virtualNs, st.lastStepNs ?? 0, st.doneNs ?? 0);
    const perTask = rt.tasks.map((t) => {
      const st = this.ts[t.id];
      const end = st.doneNs ?? virtualNs;
      return {
        name: t.name,
        lane: t.lane,
        cpu: st.bound,
        busyNs: st.busyNs,
        blockedNs: Math.max(0, end - st.spawnNs - st.busyNs),
        spawnNs: st.spawnNs,
        firstStepNs: st.firstStepNs,
        lastStepNs: st.lastStepNs,
        doneNs: st.doneNs,
        steps: st.steps,
        priority: st.priority,
        cpusUsed: [...st.cpusUsed].sort((a, b) => a - b),
        wakeLatency: summariseLatencies(st.wakeLatencies),
      };
    });
    const perCpu = this.acct.finish(virtualNs, Math.max(virtualNs, this.now));
    return {
      status,
      virtualNs,
      perTask,
      events: this.events + this.bulkExtra,
      stats: { ...this.stats },
      violations: rt.violations.slice(),
      unfinished,
      ...(this.timeline === null ? {} : { timeline: this.timeline }),
      rcuStalls: this.rcuStalls.slice(),
      overridesRan: [...rt.overridesRan].sort(),
      perCpu,
    };
  }
}

/** Events between two questions to SimOptions.stop (a power of two). */
const STOP_EVERY = 1024;

function enabledNow(op: AccessOp): boolean {
  return op.enabled === undefined || op.enabled();
}

/** Run `program` once in virtual time and return what happened, as data. */
export function simulate(program: Program, opts: SimOptions): SimResult {
  return new Simulator(opts).run(program);
}
