import type { AccessOp, ChooseOp } from "../op.js";
import type { Program, RunObserver } from "../runtime.js";
import type { Scheduler } from "../scheduler.js";
import type { Task } from "../task.js";
import { NondeterminismError, RunAbort } from "./errors.js";
import {
  classId,
  className,
  conflict,
  type Foot,
  footOf,
  isWriteKind,
  sameFoot,
  writesInto,
} from "./foot.js";
import { Interner } from "./intern.js";
import { INTERRUPT_EVERY, type RunOutcome, type Searcher, type StopCheck } from "./outcome.js";
import { TrackedRuntime } from "./tracked-runtime.js";
import {
  cloneForest,
  type FlatForest,
  flatten,
  insertSequence,
  mapForest,
  type SeqEv,
  type SeqMeta,
  type SleepEntry,
  type StateView,
  sleepCovers,
  type Tree,
  treeSize,
  UNIT_KEY,
  unflatten,
  type WNode,
} from "./wakeup.js";

/**
 * Optimal-DPOR (wakeup trees + sleep sets) over generator programs, stateless:
 * every execution re-runs the program from scratch along the recorded choices.
 *
 * Events. A step is identified by its canonical task (root tasks "0","1",…,
 * children "<parent>.<k>"), its footprint over canonical objects ("<creator>:<k>")
 * and its label: the data-choice values made while the step ran. Steps with
 * different labels are different events; a step executed "freely" enumerates
 * all its labels at that node.
 *
 * Blocking. A task whose op is not enabled is simply not schedulable. Two
 * extra mechanisms keep the search sound with blocking:
 * 1. Blocked-read races: when a blocked task's op reads an object that the
 *    last step wrote (or the task has just reached that op), the failed
 *    attempt is treated as a read event at that state and its races with the
 *    last writers are reversed like any other race (this is what makes
 *    "q takes the lock before p" be explored from "p acq; p rel; q acq").
 * 2. Infeasible reversals: a reversal ending in a blocking op may not be
 *    executable. When its enabledness is known (the op's inputs are untouched
 *    by the reordered prefix) an infeasible one is dropped at once; otherwise
 *    it is inserted and, if its first step turns out blocked when the node is
 *    reached, the branch is dropped (no execution is spent on it). Weak-initial
 *    shortcuts are only taken through steps known to be enabled, so dropping
 *    a dead branch never drops a feasible sequence.
 */

interface Cur {
  readonly task: number;
  /** Labelled child (plan is its fixed label) or unit child (plan is the label enumeration prefix). */
  readonly labeled: boolean;
  plan: number[];
  got: number[];
  ns: number[];
  /** The wakeup subtree to hand to the child node. */
  sub: WNode[];
  /** The wakeup-tree event it was taken from (null: a free choice). */
  readonly ev: SeqEv | null;
}

interface DNode {
  readonly sleep: SleepEntry[];
  readonly wut: WNode[];
  cur: Cur | null;
}

/** Per-execution record: everything is indexed by runtime ids of this run. */
class Exec {
  rootCount = 0;
  readonly rtCanon: number[] = [];
  readonly canonRt = new Map<number, number>();
  readonly spawnCount: number[] = [];
  readonly spawnStep: number[] = [];
  readonly objCanon: number[] = [];
  readonly objCount = new Map<number, number>();
  readonly taskClock: number[][] = [];
  readonly taskEvents: number[][] = [];
  readonly pendOp: (AccessOp | null)[] = [];
  readonly pendFoot: (Foot | null)[] = [];
  // events, by step index
  readonly evTask: number[] = [];
  readonly evCanon: number[] = [];
  readonly evFoot: Foot[] = [];
  readonly evBlocking: boolean[] = [];
  /** The step completes its object (AccessOp.completes). */
  readonly evCompletes: boolean[] = [];
  /** Canonical objects the step awaits the completion of (AccessOp.awaits), or null. */
  readonly evAwaits: (readonly number[] | null)[] = [];
  readonly evLocal: number[] = [];
  readonly evVC: number[][] = [];
  readonly evVals: number[][] = [];
  readonly evSpawns: (number[] | null)[] = [];
  readonly evCands: number[][] = [];
  readonly evSeq: SeqEv[] = [];
  /** Enabled runtime task ids per state (state k = before step k). */
  readonly enabledAt: number[][] = [];
  /** Per canonical object: the accesses a new access to it may have to follow. */
  readonly hist = new Map<number, ObjHist>();
}

/**
 * What an object has seen, as the maximal events later accesses must follow. `w` are the
 * latest writes: one plain write, or a group of same-class writes (class `wc`) that commute
 * with each other. `pre` is what every member of that group had to follow (so a new member
 * follows it too), and `rd` the plain reads since `w`.
 */
interface ObjHist {
  w: number[];
  wc: number;
  pre: number[];
  rd: number[];
}

function histOf(ex: Exec, o: number): ObjHist {
  let h = ex.hist.get(o);
  if (h === undefined) {
    h = { w: [], wc: -1, pre: [], rd: [] };
    ex.hist.set(o, h);
  }
  return h;
}

/** The events an access with footprint `f` depends on, per object history (maximal ones only). */
function depsOf(ex: Exec, f: Foot, out: number[]): void {
  for (const o of f.r) {
    const h = ex.hist.get(o);
    if (h !== undefined) for (const e of h.w) out.push(e);
  }
  if (f.w >= 0) {
    const h = ex.hist.get(f.w);
    if (h === undefined) return;
    if (f.c >= 0 && f.c === h.wc) {
      for (const e of h.pre) out.push(e);
    } else {
      for (const e of h.w) out.push(e);
    }
    for (const e of h.rd) out.push(e);
  }
}

export interface DporConfig {
  readonly program: Program;
  readonly maxSteps: number;
  readonly overrides?: ReadonlyMap<string, Function>;
  readonly stopRunAtViolation?: boolean;
  /**
   * Ignore what ops declare beyond their footprints (commutativity classes, completions): every
   * access is dependent on every other access of its objects. A cross-check of a verdict, and
   * the "before" of the reduction benchmarks.
   */
  readonly plainDependence?: boolean;
  readonly coverage?: boolean;
}

/** Serialised event: names instead of interned ids. */
export interface SeqEvJson {
  readonly t: string;
  readonly v: readonly number[] | null;
  readonly w: string | null;
  /** Commutativity class of the write, when it has one. */
  readonly c?: string;
  readonly r: readonly string[];
  readonly b: boolean;
  readonly s: readonly string[] | null;
}
export interface DNodeJson {
  readonly sleep: readonly { readonly t: string; readonly k: string | null }[];
  readonly wut: FlatForest<SeqEvJson>;
  readonly cur: {
    readonly t: string;
    readonly labeled: boolean;
    readonly plan: readonly number[];
    readonly sub: FlatForest<SeqEvJson>;
  } | null;
}
/** A subtree for a worker: the child `child` of the node reached by `prefix`. */
export interface DporJob {
  readonly setupPlan: readonly number[];
  /** Steps from the root to the node: task name and full label. */
  readonly prefix: readonly { readonly t: string; readonly plan: readonly number[] }[];
  /** The child to explore: labelled (its plan is the label) or unit (every label). */
  readonly child: { readonly t: string; readonly labeled: boolean; readonly plan: readonly number[] };
  /** The node's sleep set when the child was started. */
  readonly sleep: readonly { readonly t: string; readonly k: string | null }[];
  /** The child's wakeup subtree. */
  readonly sub: FlatForest<SeqEvJson>;
}

/** A race reversal that belongs to a node above the job's subtree: the coordinator inserts it. */
export interface ExportedInsertion {
  readonly depth: number;
  readonly seq: readonly SeqEvJson[];
  readonly meta: SeqMeta;
}

/** One node of the work a job gives back (DporSearcher.restState). */
export interface DporRestLevel {
  /** Full label of the step taken here on the current path; null at the last level. */
  readonly label: readonly number[] | null;
  readonly view: ProbeResult["view"];
  readonly sleep: readonly { readonly t: string; readonly k: string | null }[];
  /** Wakeup children not started yet. */
  readonly wut: FlatForest<SeqEvJson>;
  /**
   * The child being explored: its event (unit: no values), whether it has run, for a unit
   * child the label prefix its remaining labels start from (null: none left), and for a child
   * that has not run its wakeup subtree.
   */
  readonly cur: {
    readonly ev: SeqEvJson;
    readonly started: boolean;
    readonly next: readonly number[] | null;
    readonly sub: FlatForest<SeqEvJson>;
  };
}

export interface DporRest {
  readonly levels: readonly DporRestLevel[];
}

/** What a prefix probe saw at the state it stopped at. */
export interface ProbeResult {
  /** The run reached the state after the prefix with some task enabled. */
  readonly reached: boolean;
  readonly setupGot: readonly number[];
  readonly setupNs: readonly number[];
  /** Label and label sizes of the prefix's last step (if it ran). */
  readonly lastGot: readonly number[];
  readonly lastNs: readonly number[];
  /** Footprint of the last step. */
  readonly lastFoot: { readonly w: string | null; readonly c?: string; readonly r: readonly string[] } | null;
  /** Every live task at the state: name, next op footprint, blocking op, enabled. */
  readonly view: readonly {
    readonly t: string;
    readonly w: string | null;
    readonly c?: string;
    readonly r: readonly string[];
    readonly b: boolean;
    readonly enabled: boolean;
  }[];
}

export interface DporStateJson {
  readonly nodes: readonly DNodeJson[];
  readonly setupPlan: readonly number[];
  readonly replayLen: number;
  readonly div: number;
}

const EMPTY: readonly number[] = [];

export class DporSearcher implements Searcher, Scheduler, RunObserver {
  readonly tasks = new Interner();
  readonly objs = new Interner();
  readonly counters = { races: 0, insertions: 0, infeasibleRaces: 0, deadBranches: 0 };
  readonly boundCut = false;

  private nodes: DNode[] = [];
  private setupPlan: number[] = [];
  private setupGot: number[] = [];
  private setupNs: number[] = [];
  /** Steps 0..replayLen-1 follow nodes[k].cur. */
  private replayLen = 0;
  /** Races of events before `div` were handled by an earlier run with the same prefix. */
  private div = 0;

  private ex = new Exec();
  private rt: TrackedRuntime | null = null;
  private entered = -1;
  /** Nodes below this depth belong to a coordinator (job mode); their races are exported. */
  private base = 0;
  readonly exported: ExportedInsertion[] = [];
  /** Probe mode: stop when this state is reached and describe it. */
  private stopAt = -1;
  private probed: ProbeResult | null = null;
  /** The runtime of the last run: its tasks' pending ops describe the states the job hands back. */
  private lastRt: TrackedRuntime | null = null;

  constructor(private readonly cfg: DporConfig) {}

  // ---- driving ----------------------------------------------------------------

  private stop: StopCheck | undefined;

  run(stop?: StopCheck): RunOutcome {
    this.stop = stop;
    // What an interrupted run must give back: the nodes it pushed and the subtree it consumed.
    const n0 = this.nodes.length;
    const top = n0 > 0 ? this.nodes[n0 - 1].cur : null;
    const topSub = top !== null && top.sub.length > 0 ? cloneForest(top.sub) : null;
    const ex = new Exec();
    this.ex = ex;
    this.entered = -1;
    this.setupGot = [];
    this.setupNs = [];
    const rt = new TrackedRuntime({
      scheduler: this,
      observer: this,
      maxSteps: this.cfg.maxSteps + 1,
      overrides: this.cfg.overrides,
      stopOnViolation: this.cfg.stopRunAtViolation ?? true,
      coverage: this.cfg.coverage,
    });
    rt.onNewObject = (id, creator) => this.onNewObject(id, creator);
    this.rt = rt;
    let abort: RunAbort | null = null;
    try {
      rt.start(this.cfg.program);
      if (!rt.stopped) rt.runToEnd();
      this.finish();
    } catch (e) {
      if (!(e instanceof RunAbort)) throw e;
      abort = e;
    }
    this.rt = null;
    this.lastRt = rt;
    const r = rt.result();
    const interrupted = abort?.why === "interrupted";
    if (interrupted) {
      this.nodes.length = n0;
      if (top !== null && topSub !== null) top.sub = topSub;
    }
    return {
      violations: interrupted ? [] : r.violations,
      overridesRan: r.overridesRan,
      functionsRun: r.functionsRun,
      choices: r.choices,
      steps: r.stats.steps,
      blocked: abort !== null && (abort.why === "sleep-blocked" || abort.why === "redundant"),
      depthCut: abort?.why === "depth",
      interrupted,
    };
  }

  /** Backtrack to the deepest node with something left to explore. */
  advance(): boolean {
    const ex = this.ex;
    const nodes = this.nodes;
    const base = this.base;
    while (nodes.length > base) {
      const b = nodes.length - 1;
      const node = nodes[b];
      const cur = node.cur!;
      if (!cur.labeled) {
        const p = nextLabel(cur.got, cur.ns);
        if (p >= 0) {
          cur.plan = cur.got.slice(0, p);
          cur.plan.push(cur.got[p] + 1);
          this.replayLen = b + 1;
          this.div = b;
          return true;
        }
        node.sleep.push({ task: cur.task, key: null });
      } else {
        node.sleep.push({ task: cur.task, key: cur.plan.length === 0 ? null : cur.plan.join(",") });
      }
      node.cur = null;
      const enabled = ex.enabledAt[b];
      while (node.wut.length > 0) {
        const c = node.wut.shift()!;
        const rtId = ex.canonRt.get(c.ev.task);
        if (rtId !== undefined && enabled.includes(rtId) && !sleepCovers(node.sleep, c.ev)) {
          node.cur = makeCur(c);
          this.replayLen = b + 1;
          this.div = b;
          return true;
        }
        this.counters.deadBranches++;
      }
      nodes.pop();
    }
    if (base > 0) {
      // Job mode: only the labels of the job's own child remain to enumerate.
      const cur = nodes[base - 1].cur!;
      if (cur.labeled) return false;
      const p = nextLabel(cur.got, cur.ns);
      if (p < 0) return false;
      cur.plan = cur.got.slice(0, p);
      cur.plan.push(cur.got[p] + 1);
      this.replayLen = base;
      this.div = base - 1;
      return true;
    }
    const p = nextLabel(this.setupGot, this.setupNs);
    if (p >= 0) {
      this.setupPlan = this.setupGot.slice(0, p);
      this.setupPlan.push(this.setupGot[p] + 1);
      this.replayLen = 0;
      this.div = 0;
      return true;
    }
    return false;
  }

  memory(): { stack: number; wakeupNodes: number } {
    let n = 0;
    for (const d of this.nodes) {
      n += treeSize(d.wut);
      if (d.cur) n += treeSize(d.cur.sub);
    }
    return { stack: this.nodes.length, wakeupNodes: n };
  }

  // ---- Scheduler ----------------------------------------------------------------

  pickTask(enabled: readonly Task[], stepIndex: number): Task {
    return this.enterState(stepIndex, enabled);
  }

  pickValue(n: number, op: ChooseOp): number {
    const k = this.rt!.stepIndex;
    if (k < 0) {
      const pos = this.setupGot.length;
      const v = pos < this.setupPlan.length ? this.setupPlan[pos] : 0;
      if (v >= n)
        throw new NondeterminismError(`setup choice ${pos} (${op.fn}:${op.step}) offers ${n} values`);
      this.setupGot.push(v);
      this.setupNs.push(n);
      return v;
    }
    const cur = this.nodes[k].cur!;
    const pos = cur.got.length;
    if (cur.labeled && pos >= cur.plan.length) {
      throw new NondeterminismError(`step ${k} made an unexpected data choice (${op.fn}:${op.step})`);
    }
    const v = pos < cur.plan.length ? cur.plan[pos] : 0;
    if (v >= n)
      throw new NondeterminismError(`step ${k} choice ${pos} (${op.fn}:${op.step}) offers ${n} values`);
    cur.got.push(v);
    cur.ns.push(n);
    return v;
  }

  // ---- RunObserver ------------------------------------------------------------

  onSpawn(child: Task, parentId: number): void {
    const ex = this.ex;
    const name =
      parentId < 0
        ? `${ex.rootCount++}`
        : `${this.tasks.name(ex.rtCanon[parentId])}.${ex.spawnCount[parentId]++}`;
    const canon = this.tasks.id(name);
    const id = child.id;
    ex.rtCanon[id] = canon;
    ex.canonRt.set(canon, id);
    ex.spawnCount[id] = 0;
    ex.taskEvents[id] = [];
    ex.pendOp[id] = null;
    ex.pendFoot[id] = null;
    const k = this.rt!.stepIndex;
    ex.spawnStep[id] = k;
    if (k >= 0) {
      ex.taskClock[id] = ex.evVC[k];
      const sp = ex.evSpawns[k];
      if (sp === null) ex.evSpawns[k] = [canon];
      else sp.push(canon);
    } else {
      ex.taskClock[id] = [];
    }
  }

  onStep(index: number, task: Task, op: AccessOp, enabled: readonly Task[]): void {
    if (this.entered !== index) {
      const t = this.enterState(index, enabled);
      if (t !== task) throw new Error(`dpor: step ${index} ran task ${task.id}, planned ${t.id}`);
    }
    this.register(index, task, op);
  }

  // ---- per-execution bookkeeping ----------------------------------------------

  private onNewObject(id: number, creator: number): void {
    const ex = this.ex;
    const n = ex.objCount.get(creator) ?? 0;
    ex.objCount.set(creator, n + 1);
    const who = creator < 0 ? "S" : this.tasks.name(ex.rtCanon[creator]);
    ex.objCanon[id] = this.objs.id(`${who}:${n}`);
  }

  /** Footprints of single-object ops, by canonical object and read/write: they repeat endlessly. */
  private readonly footCache = new Map<number, Foot>();

  private footOfOp(op0: AccessOp): Foot {
    const op =
      this.cfg.plainDependence === true && op0.commute !== undefined ? { ...op0, commute: undefined } : op0;
    if (op.objs !== undefined && op.objs.length > 0) return footOf(op, this.canonObj);
    const key =
      (this.canonObj(op.obj) * 2 + (isWriteKind(op.kind) || op.commute !== undefined ? 1 : 0)) * 4096 +
      (op.commute === undefined ? 0 : classId(op.commute) + 1);
    let f = this.footCache.get(key);
    if (f === undefined) {
      f = footOf(op, this.canonObj);
      this.footCache.set(key, f);
    }
    return f;
  }

  private readonly canonObj = (o: number): number => {
    const c = this.ex.objCanon[o];
    if (c === undefined) throw new Error(`dpor: object ${o} has no canonical name`);
    return c;
  };

  /** Footprint of runtime task `id`'s pending op now. */
  private pendingFoot(id: number): Foot | null {
    const ex = this.ex;
    const op = this.rt!.tasks[id].pending;
    if (op === null) return null;
    if (ex.pendOp[id] !== op) {
      ex.pendOp[id] = op;
      ex.pendFoot[id] = this.footOfOp(op);
    }
    return ex.pendFoot[id];
  }

  /** Footprint of runtime task `id`'s next op at state `i` of this run. */
  private footAtState(id: number, i: number): Foot | undefined {
    const ex = this.ex;
    if (ex.spawnStep[id] >= i) return undefined;
    const te = ex.taskEvents[id];
    for (const e of te) if (e >= i) return ex.evFoot[e];
    return this.pendingFoot(id) ?? undefined;
  }

  private enterState(k: number, enabled: readonly Task[]): Task {
    const ex = this.ex;
    this.entered = k;
    const ids: number[] = [];
    for (const t of enabled) ids.push(t.id);
    ex.enabledAt[k] = ids;
    if (k === this.stopAt) this.capture(k);
    if (k > 0) this.finalize(k - 1);
    this.blockedRaces(k);
    if (k >= this.cfg.maxSteps) {
      this.pendingRaces(k);
      throw new RunAbort("depth");
    }
    if (k % INTERRUPT_EVERY === INTERRUPT_EVERY - 1 && this.stop?.()) throw new RunAbort("interrupted");
    return this.decide(k, enabled);
  }

  /** After the run ended by itself: handle the last step and the final state. */
  private finish(): void {
    const ex = this.ex;
    const n = ex.evTask.length;
    if (this.entered === n) return;
    this.entered = n;
    const ids: number[] = [];
    for (const t of this.rt!.tasks) {
      const op = t.pending;
      if (op !== null && (op.enabled === undefined || op.enabled())) ids.push(t.id);
    }
    ex.enabledAt[n] = ids;
    if (n > 0) this.finalize(n - 1);
    this.blockedRaces(n);
    // Stopped by a violation with tasks still runnable: their next steps race too.
    if (ids.length > 0) this.pendingRaces(n);
  }

  private decide(k: number, enabled: readonly Task[]): Task {
    const ex = this.ex;
    if (k < this.replayLen) {
      const cur = this.nodes[k].cur!;
      const id = ex.canonRt.get(cur.task);
      for (const t of enabled) if (t.id === id) return t;
      throw new NondeterminismError(
        `re-running the recorded prefix: task ${this.tasks.name(cur.task)} is not enabled at step ${k}`,
      );
    }
    if (this.nodes.length !== k) throw new Error(`dpor: stack has ${this.nodes.length} nodes at step ${k}`);
    let sleep: SleepEntry[] = [];
    let wut: WNode[] = [];
    if (k > 0) {
      const parent = this.nodes[k - 1];
      const f = ex.evFoot[k - 1];
      const pt = ex.evCanon[k - 1];
      sleep = parent.sleep.filter((s) => {
        if (s.task === pt) return false;
        const sf = this.pendingFoot(ex.canonRt.get(s.task)!);
        return sf !== null && !conflict(sf, f);
      });
      const pc = parent.cur!;
      wut = pc.sub;
      pc.sub = [];
    }
    const node: DNode = { sleep, wut, cur: null };
    this.nodes.push(node);
    while (wut.length > 0) {
      const c = wut.shift()!;
      const id = ex.canonRt.get(c.ev.task);
      const t = id === undefined ? undefined : enabled.find((x) => x.id === id);
      if (t !== undefined && !sleepCovers(sleep, c.ev)) {
        const pf = this.pendingFoot(t.id);
        if (pf === null || !sameFoot(pf, c.ev.foot)) {
          throw new NondeterminismError(
            `task ${this.tasks.name(c.ev.task)} reached step ${k} with a different access than recorded`,
          );
        }
        node.cur = makeCur(c);
        return t;
      }
      this.counters.deadBranches++;
    }
    // Free choice: prefer the task that ran last (fewer context switches in counterexamples).
    const prev = k > 0 ? ex.evTask[k - 1] : -1;
    let pick: Task | null = null;
    let partial: Task | null = null;
    for (const t of enabled) {
      const c = ex.rtCanon[t.id];
      let unit = false;
      let labeled = false;
      for (const s of sleep) {
        if (s.task !== c) continue;
        if (s.key === null) unit = true;
        else labeled = true;
      }
      if (unit) continue;
      if (labeled) {
        partial ??= t;
        continue;
      }
      if (pick === null || t.id === prev) pick = t;
      if (t.id === prev) break;
    }
    pick ??= partial;
    if (pick === null) {
      // Every continuation is covered elsewhere: this node has nothing to explore.
      this.nodes.pop();
      throw new RunAbort("sleep-blocked");
    }
    node.cur = { task: ex.rtCanon[pick.id], labeled: false, plan: [], got: [], ns: [], sub: [], ev: null };
    return pick;
  }

  private register(k: number, task: Task, op: AccessOp): void {
    const ex = this.ex;
    const id = task.id;
    const foot = this.footOfOp(op);
    const base = ex.taskClock[id];
    const nt = this.rt!.tasks.length;
    const vc = base.slice();
    while (vc.length < nt) vc.push(0);
    const deps: number[] = [];
    depsOf(ex, foot, deps);
    const cands: number[] = [];
    for (const d of deps) {
      join(vc, ex.evVC[d]);
      if (ex.evTask[d] !== id) cands.push(d);
    }
    const local = ex.taskEvents[id].length;
    vc[id] = local + 1;
    ex.evTask[k] = id;
    ex.evCanon[k] = ex.rtCanon[id];
    ex.evFoot[k] = foot;
    ex.evBlocking[k] = op.enabled !== undefined;
    ex.evCompletes[k] = op.completes === true && this.cfg.plainDependence !== true;
    ex.evAwaits[k] = this.awaitsOf(op);
    ex.evLocal[k] = local;
    ex.evVC[k] = vc;
    ex.evSpawns[k] = null;
    ex.evCands[k] = k >= this.div ? this.directRaces(cands, base) : (EMPTY as number[]);
    ex.taskClock[id] = vc;
    ex.taskEvents[id].push(k);
    for (const o of foot.r) histOf(ex, o).rd.push(k);
    if (foot.w >= 0) {
      const h = histOf(ex, foot.w);
      if (foot.c >= 0 && foot.c === h.wc) {
        // Joins the group of commuting writes; the reads it followed, later members follow too.
        h.w.push(k);
        for (const e of h.rd) h.pre.push(e);
        h.rd = [];
      } else if (foot.c >= 0) {
        h.pre = h.w.concat(h.rd);
        h.w = [k];
        h.wc = foot.c;
        h.rd = [];
      } else {
        h.w = [k];
        h.wc = -1;
        h.pre = [];
        h.rd = [];
      }
    }
    const cur = this.nodes[k].cur!;
    cur.got = [];
    cur.ns = [];
    ex.evVals[k] = cur.got;
  }

  /** Keep the candidates not ordered before the task's own past or before another candidate. */
  private directRaces(cands: number[], base: readonly number[]): number[] {
    if (cands.length === 0) return cands;
    const ex = this.ex;
    const out: number[] = [];
    for (let a = 0; a < cands.length; a++) {
      const c = cands[a];
      if (out.includes(c)) continue;
      const ct = ex.evTask[c];
      const cl = ex.evLocal[c];
      if ((base[ct] ?? 0) > cl) continue;
      let covered = false;
      for (const d of cands) {
        if (d !== c && (ex.evVC[d][ct] ?? 0) > cl) {
          covered = true;
          break;
        }
      }
      if (!covered) out.push(c);
    }
    return out;
  }

  /** Step k has finished (its label is known): reverse its races. */
  private finalize(k: number): void {
    const ex = this.ex;
    const vals = ex.evVals[k];
    const seq: SeqEv = {
      task: ex.evCanon[k],
      vals,
      key: vals.join(","),
      foot: ex.evFoot[k],
      blocking: ex.evBlocking[k],
      spawns: ex.evSpawns[k],
    };
    ex.evSeq[k] = seq;
    const node = this.nodes[k];
    const cur = node.cur!;
    if (!cur.labeled && k >= this.div && vals.length > 0) {
      for (const s of node.sleep) {
        if (s.task === seq.task && s.key === seq.key) throw new RunAbort("redundant");
      }
    }
    const awaits = ex.evAwaits[k];
    for (const c of ex.evCands[k]) this.reverse(c, k, ex.evTask[k], seq, awaits);
  }

  private awaitsOf(op: AccessOp): readonly number[] | null {
    if (op.awaits === undefined || op.awaits.length === 0 || this.cfg.plainDependence === true) return null;
    return op.awaits.map(this.canonObj);
  }

  /**
   * State k has been reached. A task blocked here whose op reads what step k-1
   * wrote (or that has just arrived at its op) has failed an attempt: reverse
   * the races of that attempt with the last writers of the objects it reads.
   */
  private blockedRaces(k: number): void {
    if (k === 0 || k - 1 < this.div) return;
    const ex = this.ex;
    const e = k - 1;
    const fe = ex.evFoot[e];
    const te = ex.evTask[e];
    const enabled = ex.enabledAt[k];
    const tasks = this.rt!.tasks;
    for (let q = 0; q < tasks.length; q++) {
      const op = tasks[q].pending;
      if (op === null || enabled.includes(q)) continue;
      const pf = this.pendingFoot(q)!;
      if (q !== te && ex.spawnStep[q] !== e && !writesInto(fe, pf)) continue;
      const base = ex.taskClock[q];
      const cands: number[] = [];
      // The failed attempt only looked: it races with the latest writes of what it reads.
      const push = (o: number): void => {
        const h = ex.hist.get(o);
        if (h !== undefined) for (const w of h.w) if (ex.evTask[w] !== q) cands.push(w);
      };
      if (pf.w >= 0) push(pf.w);
      for (const o of pf.r) push(o);
      const races = this.directRaces(cands, base);
      if (races.length === 0) continue;
      const seq: SeqEv = {
        task: ex.rtCanon[q],
        vals: null,
        key: UNIT_KEY,
        foot: pf,
        blocking: true,
        spawns: null,
      };
      const awaits = this.awaitsOf(op);
      for (const c of races) this.reverse(c, k, q, seq, awaits);
    }
  }

  /**
   * The run was truncated at state k (depth bound, or a violation stopped it)
   * while tasks could still run. Their next steps would have come later and
   * raced with earlier steps; reverse those races now, or the schedules that
   * run them earlier would never be tried.
   */
  private pendingRaces(k: number): void {
    if (k === 0 || k - 1 < this.div) return;
    const ex = this.ex;
    const tasks = this.rt!.tasks;
    for (const q of ex.enabledAt[k]) {
      const op = tasks[q].pending!;
      const pf = this.pendingFoot(q)!;
      const deps: number[] = [];
      depsOf(ex, pf, deps);
      const cands: number[] = [];
      for (const d of deps) if (ex.evTask[d] !== q) cands.push(d);
      const races = this.directRaces(cands, ex.taskClock[q]);
      if (races.length === 0) continue;
      const seq: SeqEv = {
        task: ex.rtCanon[q],
        vals: null,
        key: UNIT_KEY,
        foot: pf,
        blocking: op.enabled !== undefined,
        spawns: null,
      };
      const awaits = this.awaitsOf(op);
      for (const c of races) this.reverse(c, k, q, seq, awaits);
    }
  }

  /**
   * Race between event i and `last` (task q) at position j: insert
   * notdep(i).last into wut(i), unless the reversal is known infeasible.
   */
  private reverse(i: number, j: number, q: number, racing: SeqEv, awaits: readonly number[] | null): void {
    const ex = this.ex;
    this.counters.races++;
    // A wait cannot move in front of a completion it awaits (AccessOp.awaits): the runtime holds
    // the model to that promise, so the reordering is infeasible, and so is any reordering in front
    // of what happens before that completion.
    if (awaits !== null && ex.evCompletes[i] && awaits.includes(ex.evFoot[i].w)) {
      this.counters.infeasibleRaces++;
      return;
    }
    // Moved in front of the step it raced with, the racing step sees another value, so the data
    // choices it makes (its label) may differ: it goes in as a unit event, every label explored.
    const last: SeqEv = racing.vals === null ? racing : { ...racing, vals: null, key: UNIT_KEY };
    const ti = ex.evTask[i];
    const li = ex.evLocal[i];
    const notdep: number[] = [];
    for (let m = i + 1; m < j; m++) {
      if ((ex.evVC[m][ti] ?? 0) <= li) notdep.push(m);
    }
    if (last.blocking) {
      const te = ex.taskEvents[q];
      let before = -1;
      for (const e of te) if (e < j) before = e;
      if (before < i && ex.spawnStep[q] < i) {
        let untouched = true;
        for (const m of notdep) {
          if (writesInto(ex.evFoot[m], last.foot)) {
            untouched = false;
            break;
          }
        }
        if (untouched && !ex.enabledAt[i].includes(q)) {
          this.counters.infeasibleRaces++;
          return;
        }
      }
    }
    const w: SeqEv[] = [];
    const rt: number[] = [];
    const loc: number[] = [];
    const vc: number[][] = [];
    const lastVc: number[] = [];
    const lf = last.foot;
    for (const m of notdep) {
      const e = ex.evSeq[m];
      w.push(e);
      rt.push(ex.evTask[m]);
      loc.push(ex.evLocal[m]);
      vc.push(ex.evVC[m]);
      // Within the sequence, `last` comes after its own task's steps, what it conflicts with, and its spawner.
      if (ex.evTask[m] === q || conflict(e.foot, lf) || e.spawns?.includes(last.task)) {
        join(lastVc, ex.evVC[m]);
      }
    }
    w.push(last);
    rt.push(q);
    loc.push(j < ex.evTask.length && ex.evTask[j] === q ? ex.evLocal[j] : ex.taskEvents[q].length);
    vc.push(lastVc);
    if (i < this.base) {
      this.exported.push({ depth: i, seq: w.map((e) => this.evJson(e)), meta: { rt, loc, vc } });
      return;
    }
    const node = this.nodes[i];
    const view: StateView = {
      footAt: (task) => {
        const id = ex.canonRt.get(task);
        return id === undefined ? undefined : this.footAtState(id, i);
      },
      enabledAt: (task) => {
        const id = ex.canonRt.get(task);
        return id !== undefined && ex.enabledAt[i].includes(id);
      },
    };
    if (insertSequence(node.wut, node.sleep, view, w, { rt, loc, vc }) === "inserted")
      this.counters.insertions++;
  }

  // ---- job mode and probes (parallel exploration) --------------------------------

  /** Explore one job's subtree: the prefix is replayed, races above it are exported. */
  setupJob(job: DporJob): void {
    const T = (n: string): number => this.tasks.id(n);
    this.setupPlan = job.setupPlan.slice();
    this.nodes = job.prefix.map((p) => ({
      sleep: [],
      wut: [],
      cur: { task: T(p.t), labeled: true, plan: p.plan.slice(), got: [], ns: [], sub: [], ev: null },
    }));
    this.nodes.push({
      sleep: job.sleep.map((x) => ({ task: T(x.t), key: x.k })),
      wut: [],
      cur: {
        task: T(job.child.t),
        labeled: job.child.labeled,
        plan: job.child.plan.slice(),
        got: [],
        ns: [],
        sub: unflatten(job.sub, (e) => this.evFromJson(e)),
        ev: null,
      },
    });
    this.base = this.nodes.length;
    this.replayLen = this.base;
    this.div = 0;
  }

  /**
   * The work a job has left, taken between runs (after advance() returned true), so the job can
   * stop after a budget and give the rest back to the coordinator as new jobs (parallel
   * Optimal-DPOR's work splitting). One level per node from the job's own node (base - 1) to the
   * node whose child runs next; the states of those nodes are those of the last run, whose prefix
   * the next run replays.
   */
  restState(): DporRest {
    const ex = this.ex;
    const rt = this.lastRt!;
    const b = this.replayLen - 1;
    const levels: DporRestLevel[] = [];
    for (let k = this.base - 1; k <= b; k++) {
      const node = this.nodes[k];
      const cur = node.cur!;
      const started = k < b || cur.got.length > 0;
      let ev: SeqEv;
      if (started) {
        // What ran at step k (the same task and footprint for every label of a unit child).
        const e = ex.evSeq[k];
        ev = cur.labeled ? e : { ...e, vals: null, key: UNIT_KEY };
      } else {
        if (cur.ev === null) throw new Error("dpor: a child about to run has no wakeup event");
        ev = cur.ev;
      }
      let next: number[] | null = null;
      if (!cur.labeled && started) {
        if (k === b) next = cur.plan.slice();
        else {
          const p = nextLabel(cur.got, cur.ns);
          if (p >= 0) next = [...cur.got.slice(0, p), cur.got[p] + 1];
        }
      }
      levels.push({
        label: k < b ? cur.got.slice() : null,
        view: this.viewAt(k, rt),
        sleep: node.sleep.map((x) => ({ t: this.tasks.name(x.task), k: x.key })),
        wut: flatten(node.wut, (e) => this.evJson(e)),
        cur: { ev: this.evJson(ev), started, next, sub: flatten(cur.sub, (e) => this.evJson(e)) },
      });
    }
    return { levels };
  }

  /** Every live task at state k of the last run: its next access, and whether it was enabled there. */
  private viewAt(k: number, rt: TrackedRuntime): ProbeResult["view"] {
    const ex = this.ex;
    const name = (o: number): string => this.objs.name(o);
    const view: ProbeResult["view"][number][] = [];
    for (const t of rt.tasks) {
      const id = t.id;
      if (ex.spawnStep[id] >= k) continue;
      let f: Foot | null = null;
      let blocking = false;
      for (const e of ex.taskEvents[id]) {
        if (e >= k) {
          f = ex.evFoot[e];
          blocking = ex.evBlocking[e];
          break;
        }
      }
      if (f === null) {
        const op = t.pending;
        if (op === null) continue;
        f = this.footOfOp(op);
        blocking = op.enabled !== undefined;
      }
      view.push({
        t: this.tasks.name(ex.rtCanon[id]),
        w: f.w >= 0 ? name(f.w) : null,
        ...classJson(f.c),
        r: f.r.map(name),
        b: blocking,
        enabled: ex.enabledAt[k].includes(id),
      });
    }
    return view;
  }

  /**
   * Run the program along `path` (the last step unit: plan is a label prefix)
   * and describe the state after it, without exploring or detecting races.
   */
  probe(
    setupPlan: readonly number[],
    path: readonly { readonly t: string; readonly labeled: boolean; readonly plan: readonly number[] }[],
  ): ProbeResult {
    const T = (n: string): number => this.tasks.id(n);
    this.setupPlan = setupPlan.slice();
    this.nodes = path.map((p) => ({
      sleep: [],
      wut: [],
      cur: { task: T(p.t), labeled: p.labeled, plan: p.plan.slice(), got: [], ns: [], sub: [], ev: null },
    }));
    this.replayLen = path.length;
    this.div = Number.POSITIVE_INFINITY;
    this.base = 0;
    this.stopAt = path.length;
    this.probed = null;
    try {
      this.run();
    } finally {
      this.stopAt = -1;
    }
    const k = path.length;
    const last = k > 0 ? this.nodes[k - 1]?.cur : undefined;
    const got = this.probed ?? {
      reached: false,
      setupGot: this.setupGot.slice(),
      setupNs: this.setupNs.slice(),
      lastGot: last?.got.slice() ?? [],
      lastNs: last?.ns.slice() ?? [],
      lastFoot: null,
      view: [],
    };
    this.nodes = [];
    return got;
  }

  private capture(k: number): void {
    const ex = this.ex;
    const name = (o: number): string => this.objs.name(o);
    const view: ProbeResult["view"][number][] = [];
    const tasks = this.rt!.tasks;
    for (const t of tasks) {
      const op = t.pending;
      if (op === null) continue;
      const f = this.pendingFoot(t.id)!;
      view.push({
        t: this.tasks.name(ex.rtCanon[t.id]),
        w: f.w >= 0 ? name(f.w) : null,
        ...classJson(f.c),
        r: f.r.map(name),
        b: op.enabled !== undefined,
        enabled: ex.enabledAt[k].includes(t.id),
      });
    }
    const cur = k > 0 ? this.nodes[k - 1].cur! : null;
    const lf = k > 0 ? ex.evFoot[k - 1] : null;
    this.probed = {
      reached: true,
      setupGot: this.setupGot.slice(),
      setupNs: this.setupNs.slice(),
      lastGot: cur?.got.slice() ?? [],
      lastNs: cur?.ns.slice() ?? [],
      lastFoot:
        lf === null ? null : { w: lf.w >= 0 ? name(lf.w) : null, ...classJson(lf.c), r: lf.r.map(name) },
      view,
    };
    throw new RunAbort("probe");
  }

  // ---- checkpoint -----------------------------------------------------------

  evJson(e: SeqEv): SeqEvJson {
    return {
      t: this.tasks.name(e.task),
      v: e.vals,
      w: e.foot.w >= 0 ? this.objs.name(e.foot.w) : null,
      ...classJson(e.foot.c),
      r: e.foot.r.map((o) => this.objs.name(o)),
      b: e.blocking,
      s: e.spawns === null ? null : e.spawns.map((t) => this.tasks.name(t)),
    };
  }

  evFromJson(e: SeqEvJson): SeqEv {
    const T = (n: string): number => this.tasks.id(n);
    const O = (n: string): number => this.objs.id(n);
    return {
      task: T(e.t),
      vals: e.v === null ? null : e.v.slice(),
      key: e.v === null ? UNIT_KEY : e.v.join(","),
      foot: { w: e.w === null ? -1 : O(e.w), c: e.c === undefined ? -1 : classId(e.c), r: e.r.map(O) },
      blocking: e.b,
      spawns: e.s === null ? null : e.s.map(T),
    };
  }

  checkpointState(): DporStateJson {
    const evJson = (e: SeqEv): SeqEvJson => this.evJson(e);
    const treeJson = (ks: readonly WNode[]): FlatForest<SeqEvJson> => flatten(ks, evJson);
    return {
      nodes: this.nodes.map((d) => ({
        sleep: d.sleep.map((s) => ({ t: this.tasks.name(s.task), k: s.key })),
        wut: treeJson(d.wut),
        cur:
          d.cur === null
            ? null
            : {
                t: this.tasks.name(d.cur.task),
                labeled: d.cur.labeled,
                plan: d.cur.plan,
                sub: treeJson(d.cur.sub),
              },
      })),
      setupPlan: this.setupPlan,
      replayLen: this.replayLen,
      div: this.div,
    };
  }

  restore(s: DporStateJson): void {
    const T = (n: string): number => this.tasks.id(n);
    const ev = (e: SeqEvJson): SeqEv => this.evFromJson(e);
    // Checkpoints written before trees were flattened hold nested arrays: read both.
    const tree = (ks: FlatForest<SeqEvJson> | readonly Tree<SeqEvJson>[]): WNode[] =>
      Array.isArray(ks)
        ? mapForest(ks as readonly Tree<SeqEvJson>[], ev)
        : unflatten(ks as FlatForest<SeqEvJson>, ev);
    this.nodes = s.nodes.map((d) => ({
      sleep: d.sleep.map((x) => ({ task: T(x.t), key: x.k })),
      wut: tree(d.wut),
      cur:
        d.cur === null
          ? null
          : {
              task: T(d.cur.t),
              labeled: d.cur.labeled,
              plan: d.cur.plan.slice(),
              got: [],
              ns: [],
              sub: tree(d.cur.sub),
              ev: null,
            },
    }));
    this.setupPlan = s.setupPlan.slice();
    this.replayLen = s.replayLen;
    this.div = s.div;
  }
}

/** The optional `c` field of a serialised footprint. */
function classJson(c: number): { c?: string } {
  const n = className(c);
  return n === null ? {} : { c: n };
}

function makeCur(c: WNode): Cur {
  const { ev } = c;
  if (ev.vals === null) return { task: ev.task, labeled: false, plan: [], got: [], ns: [], sub: [], ev };
  return { task: ev.task, labeled: true, plan: ev.vals.slice(), got: [], ns: [], sub: c.kids, ev };
}

/** Deepest label position with an untried value, or -1. */
function nextLabel(got: readonly number[], ns: readonly number[]): number {
  for (let p = got.length - 1; p >= 0; p--) if (got[p] + 1 < ns[p]) return p;
  return -1;
}

function join(a: number[], b: readonly number[]): void {
  for (let t = 0; t < b.length; t++) {
    const v = b[t];
    if (v > (a[t] ?? 0)) a[t] = v;
  }
}
