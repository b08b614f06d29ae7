import type { Program } from "../runtime.js";
import {
  type DporJob,
  type DporRest,
  DporSearcher,
  type ExportedInsertion,
  type ProbeResult,
} from "./dpor.js";
import { classId, conflict, type Foot } from "./foot.js";
import type { ProgramSpec } from "./program-spec.js";
import {
  descendInsert,
  flatten,
  type InsertOutcome,
  Rest,
  type SeqEv,
  type SleepEntry,
  type StateView,
  sleepCovers,
  sleeperIsWI,
  UNIT_KEY,
  unflatten,
  type WNode,
  weakInitial,
} from "./wakeup.js";
import type { JobOptions, JobOutput } from "./worker.js";

/**
 * The coordinator of a parallel Optimal-DPOR exploration. It holds the top of
 * the exploration tree (nodes above the split depth) and gives each child at
 * the split depth to a worker as a job.
 *
 * Sequential Optimal-DPOR explores the children of a node one after the
 * other, and a race found under child k may add a sequence to the wakeup tree
 * of a later child k+1 before k+1 starts: the wakeup tree carries obligations
 * the races under k+1 alone would not recreate. Here children run
 * concurrently, so the coordinator keeps every child (started or not) with its
 * wakeup subtree and replays sequential semantics:
 * - a race from under child k is checked against the parent's sleep set as it
 *   was when k started (only earlier siblings), and
 * - it may descend into children started after k: into a top node's children,
 *   or into a job's wakeup subtree, in which case that job is re-run with the
 *   grown subtree (its earlier result is discarded).
 */

/** One child of a top node: a step, and what became of it. */
interface Kid {
  readonly ev: SeqEv;
  /** Wakeup subtree below the step (pending and job children: late insertions merge here). */
  readonly sub: WNode[];
  /** Created with no subtree: a leaf covers whatever reaches it. */
  readonly leaf: boolean;
  readonly owner: TopNode;
  state: "pending" | "dead" | "started";
  /** Owner's sleep-set length when this child started. */
  snap: number;
  /** Labelled child: its node or job; unit child: one per label. */
  readonly handles: (TopNode | JobRec)[];
  finished: boolean;
}

interface TopNode {
  readonly kind: "node";
  readonly depth: number;
  readonly setupPlan: readonly number[];
  readonly prefix: readonly { readonly t: string; readonly plan: readonly number[] }[];
  readonly sleep: SleepEntry[];
  readonly kids: Kid[];
  readonly view: ReadonlyMap<
    number,
    { readonly foot: Foot; readonly enabled: boolean; readonly blocking: boolean }
  >;
  readonly parent: TopNode | null;
  readonly parentKid: Kid | null;
  /** Children not finished (pending ones included). */
  open: number;
  done: boolean;
  queued: boolean;
  /** The split job this node was handed back by (null: built by the coordinator's probes). */
  readonly region: Region | null;
}

interface JobRec {
  readonly kind: "job";
  readonly node: TopNode;
  readonly kid: Kid;
  readonly child: DporJob["child"];
  readonly sleepBefore: readonly SleepEntry[];
  /** The wakeup subtree the job explores (the kid's, or none for one label of a unit kid). */
  readonly sub: WNode[];
  version: number;
  running: boolean;
  accepted: Accepted | null;
  finished: boolean;
  readonly region: Region | null;
  /** Set while the job's output was a split: the work it handed back. */
  split: Region | null;
}

/** An output counted in the totals, until a stale job or a reset region withdraws it. */
interface Accepted {
  readonly out: JobOutput;
  live: boolean;
}

/**
 * The work a budgeted job handed back: nodes and jobs below the job's child. A late race into
 * the job's wakeup subtree (sequentially, it would have been there before the job started)
 * resets the region: everything counted under it is withdrawn and the job runs again whole.
 */
interface Region {
  readonly job: JobRec;
  readonly parent: Region | null;
  /** The handles of job.kid that replaced the job. */
  readonly handles: (TopNode | JobRec)[];
  /** Outputs accepted under the region (nested regions' included). */
  readonly accepted: Accepted[];
  dead: boolean;
}

function regionDead(r: Region | null): boolean {
  for (; r !== null; r = r.parent) if (r.dead) return true;
  return false;
}

export interface DporCoordinatorHooks {
  /** Submit a job; `done` gets its output (or is never called if the run was aborted). */
  run(job: DporJob, budget: number | undefined, done: (out: JobOutput) => void): void;
  /** Room for another job now? */
  canStart(): boolean;
  /** Runs after which a job should hand its remaining work back (undefined: none, run it whole). */
  budget(backlog: number): number | undefined;
  /** A job's output was accepted (add) or withdrawn because the job went stale (sub). */
  accept(out: JobOutput, sign: 1 | -1): void;
  blocked(): void;
  deadBranch(): void;
  insertion(): void;
  rerun(): void;
}

export class DporCoordinator {
  private readonly P: DporSearcher;
  private readonly ready: TopNode[] = [];
  private readonly roots: TopNode[] = [];
  private readonly idle: JobRec[] = [];

  constructor(
    program: Program,
    jopts: JobOptions,
    private readonly split: number,
    private readonly hooks: DporCoordinatorHooks,
    /** Give jobs budgets and split what they hand back (see hooks.budget). */
    private readonly adaptive: boolean,
    overrides?: ReadonlyMap<string, Function>,
  ) {
    this.P = new DporSearcher({ program, maxSteps: jopts.maxSteps ?? 10_000, overrides });
  }

  // ---- conversions ------------------------------------------------------------

  private T(n: string): number {
    return this.P.tasks.id(n);
  }

  private foot(w: string | null, c: string | undefined, r: readonly string[]): Foot {
    return {
      w: w === null ? -1 : this.P.objs.id(w),
      c: c === undefined ? -1 : classId(c),
      r: r.map((o) => this.P.objs.id(o)),
    };
  }

  private viewOf(pr: ProbeResult): TopNode["view"] {
    return new Map(
      pr.view.map((v) => [
        this.T(v.t),
        { foot: this.foot(v.w, v.c, v.r), enabled: v.enabled, blocking: v.b },
      ]),
    );
  }

  private stateView(n: TopNode): StateView {
    return { footAt: (t) => n.view.get(t)?.foot, enabledAt: (t) => n.view.get(t)?.enabled ?? false };
  }

  // ---- tree bookkeeping ---------------------------------------------------------

  private newKid(owner: TopNode, w: WNode): Kid {
    return {
      ev: w.ev,
      sub: w.kids,
      leaf: w.kids.length === 0,
      owner,
      state: "pending",
      snap: 0,
      handles: [],
      finished: false,
    };
  }

  private addKid(owner: TopNode, w: WNode): void {
    owner.kids.push(this.newKid(owner, w));
    owner.open++;
    this.reopen(owner);
    this.enqueue(owner);
  }

  private enqueue(n: TopNode): void {
    if (!n.queued && !n.done) {
      n.queued = true;
      this.ready.push(n);
    }
  }

  private handleFinished(h: TopNode | JobRec): boolean {
    return h.kind === "node" ? h.done : h.finished;
  }

  private checkKid(kid: Kid): void {
    if (kid.finished || kid.state === "pending") return;
    if (kid.state === "started" && !kid.handles.every((h) => this.handleFinished(h))) return;
    kid.finished = true;
    kid.owner.open--;
    this.checkDone(kid.owner);
  }

  private checkDone(n: TopNode): void {
    if (n.done || n.open > 0 || regionDead(n.region)) return;
    n.done = true;
    if (n.parentKid !== null) this.checkKid(n.parentKid);
  }

  /** `n` has work again: undo its completion and its parents'. */
  private reopen(n: TopNode): void {
    if (!n.done) return;
    n.done = false;
    const k = n.parentKid;
    if (k?.finished) {
      k.finished = false;
      k.owner.open++;
      this.reopen(k.owner);
    }
  }

  private unfinishJob(j: JobRec): void {
    if (!j.finished) return;
    j.finished = false;
    const k = j.kid;
    if (k.finished) {
      k.finished = false;
      k.owner.open++;
      this.reopen(k.owner);
    }
  }

  // ---- starting children -----------------------------------------------------------

  /** First child of a node reached with an empty wakeup tree: any enabled task not asleep. */
  private freePick(n: TopNode): boolean {
    const last = n.prefix.length > 0 ? this.T(n.prefix[n.prefix.length - 1].t) : -1;
    let pick = -1;
    let partial = -1;
    for (const [t, v] of n.view) {
      if (!v.enabled) continue;
      let unit = false;
      let labeled = false;
      for (const s of n.sleep) {
        if (s.task !== t) continue;
        if (s.key === null) unit = true;
        else labeled = true;
      }
      if (unit) continue;
      if (labeled) {
        if (partial < 0) partial = t;
        continue;
      }
      if (pick < 0 || t === last) pick = t;
    }
    if (pick < 0) pick = partial;
    if (pick < 0) return false;
    const v = n.view.get(pick)!;
    const ev: SeqEv = {
      task: pick,
      vals: null,
      key: UNIT_KEY,
      foot: v.foot,
      blocking: v.blocking,
      spawns: null,
    };
    n.kids.push(this.newKid(n, { ev, kids: [] }));
    n.open++;
    return true;
  }

  /**
   * The node reached by `prefix`, or null when nothing there can be explored
   * (its wakeup tree is all blocked and every enabled task sleeps): a worker
   * must then run it, as a sequential search would, to find the races of that
   * sleep-set-blocked run.
   */
  private makeNode(
    parent: TopNode | null,
    parentKid: Kid | null,
    pr: ProbeResult,
    prefix: TopNode["prefix"],
    sleep: SleepEntry[],
    wut: readonly WNode[],
  ): TopNode | null {
    const n: TopNode = {
      kind: "node",
      depth: prefix.length,
      setupPlan: parent?.setupPlan ?? pr.setupGot.slice(),
      prefix,
      sleep,
      kids: [],
      view: this.viewOf(pr),
      parent,
      parentKid,
      open: 0,
      done: false,
      queued: false,
      region: parent?.region ?? null,
    };
    let alive = false;
    for (const w of wut) {
      const kid = this.newKid(n, w);
      const v = n.view.get(w.ev.task);
      if (v === undefined || !v.enabled || sleepCovers(sleep, w.ev)) {
        kid.state = "dead";
        kid.finished = true;
        this.hooks.deadBranch();
      } else {
        alive = true;
        n.open++;
      }
      n.kids.push(kid);
    }
    if (!alive && !this.freePick(n)) return null;
    return n;
  }

  private newJob(
    n: TopNode,
    kid: Kid,
    child: DporJob["child"],
    sleepBefore: readonly SleepEntry[],
    sub: WNode[],
    region = n.region,
  ): JobRec {
    const j: JobRec = {
      kind: "job",
      node: n,
      kid,
      child,
      sleepBefore,
      sub,
      version: 0,
      running: false,
      accepted: null,
      finished: false,
      region,
      split: null,
    };
    kid.handles.push(j);
    this.idle.push(j);
    return j;
  }

  private start(n: TopNode, kid: Kid): void {
    const P = this.P;
    const v = n.view.get(kid.ev.task);
    if (v === undefined || !v.enabled || sleepCovers(n.sleep, kid.ev)) {
      kid.state = "dead";
      this.hooks.deadBranch();
      this.checkKid(kid);
      return;
    }
    const sleepBefore = n.sleep.slice();
    kid.snap = sleepBefore.length;
    const vals = kid.ev.vals;
    n.sleep.push({ task: kid.ev.task, key: vals === null || vals.length === 0 ? null : vals.join(",") });
    kid.state = "started";
    const t = P.tasks.name(kid.ev.task);
    // Below a split job the tree was built by the job: its pending children go out as jobs.
    if (n.depth + 1 >= this.split || n.region !== null) {
      this.newJob(n, kid, { t, labeled: vals !== null, plan: vals ?? [] }, sleepBefore, kid.sub);
      return;
    }
    let plan: number[] = vals === null ? [] : vals.slice();
    for (;;) {
      const pr = P.probe(n.setupPlan, [
        ...n.prefix.map((p) => ({ t: p.t, labeled: true, plan: p.plan })),
        { t, labeled: vals !== null, plan },
      ]);
      const label = pr.lastGot.slice();
      if (vals === null && label.length > 0 && labelAsleep(sleepBefore, kid.ev.task, label)) {
        // An earlier sibling ran this very label: the sequential search abandons it as redundant
        // (DporSearcher.finalize) without reversing its races.
        this.hooks.blocked();
      } else if (!pr.reached || pr.lastFoot === null) {
        // The run ends within this step (or stops at a violation): a worker explores it.
        this.newJob(n, kid, { t, labeled: true, plan: label }, sleepBefore, vals !== null ? kid.sub : []);
      } else {
        const lf = this.foot(pr.lastFoot.w, pr.lastFoot.c, pr.lastFoot.r);
        const sleep = sleepBefore.filter((s) => {
          if (s.task === kid.ev.task) return false;
          const f = n.view.get(s.task)?.foot;
          return f !== undefined && !conflict(f, lf);
        });
        const child = this.makeNode(
          n,
          kid,
          pr,
          [...n.prefix, { t, plan: label }],
          sleep,
          vals !== null ? kid.sub : [],
        );
        if (child === null) {
          this.newJob(n, kid, { t, labeled: true, plan: label }, sleepBefore, vals !== null ? kid.sub : []);
        } else {
          kid.handles.push(child);
          this.enqueue(child);
        }
      }
      if (vals !== null) break;
      let p = label.length - 1;
      while (p >= 0 && label[p] + 1 >= pr.lastNs[p]) p--;
      if (p < 0) break;
      plan = label.slice(0, p);
      plan.push(label[p] + 1);
    }
    this.checkKid(kid);
  }

  // ---- jobs -------------------------------------------------------------------------

  private dispatch(j: JobRec): void {
    const P = this.P;
    const n = j.node;
    const version = j.version;
    j.running = true;
    const job: DporJob = {
      setupPlan: n.setupPlan,
      prefix: n.prefix,
      child: j.child,
      sleep: j.sleepBefore.map((x) => ({ t: P.tasks.name(x.task), k: x.key })),
      sub: flatten(j.sub, (e) => P.evJson(e)),
    };
    const budget = this.adaptive ? this.hooks.budget(this.backlog()) : undefined;
    this.hooks.run(job, budget, (out) => {
      j.running = false;
      // Its region was reset: the job that handed it back runs again whole.
      if (regionDead(j.region)) return;
      if (j.version !== version) {
        // Went stale while running: its wakeup subtree grew. Run it again.
        this.idle.push(j);
        return;
      }
      for (const ins of out.exported) this.insertFromJob(j, ins);
      if (j.version !== version) {
        this.idle.push(j);
        return;
      }
      if (out.rest !== undefined) this.takeRest(j, out.rest);
      j.accepted = this.accept(j.split ?? j.region, out);
      j.finished = true;
      this.checkKid(j.kid);
    });
  }

  /** Count an output, remembering it in every region it was found under. */
  private accept(r: Region | null, out: JobOutput): Accepted {
    const a: Accepted = { out, live: true };
    this.hooks.accept(out, 1);
    for (; r !== null; r = r.parent) r.accepted.push(a);
    return a;
  }

  private withdraw(a: Accepted | null): void {
    if (a === null || !a.live) return;
    a.live = false;
    this.hooks.accept(a.out, -1);
  }

  /** Pending work the coordinator holds: idle jobs and children not started (counted up to a cap). */
  private backlog(cap = 1024): number {
    let n = this.idle.length;
    for (let i = this.ready.length - 1; i >= 0 && n < cap; i--) {
      for (const k of this.ready[i].kids) if (k.state === "pending") n++;
    }
    return n;
  }

  /**
   * Job `j` stopped after its budget: turn the rest of its stack into nodes of the top tree, with
   * the same sleep sets and wakeup trees, whose pending children become jobs of their own.
   */
  private takeRest(j: JobRec, rest: DporRest): void {
    const P = this.P;
    const region: Region = { job: j, parent: j.region, handles: [], accepted: [], dead: false };
    j.split = region;
    const [top, ...below] = rest.levels;
    const ev = (e: Parameters<DporSearcher["evFromJson"]>[0]): SeqEv => P.evFromJson(e);
    /** A unit child's labels from `next` on, as one job. */
    const labelJob = (
      n: TopNode,
      kid: Kid,
      next: readonly number[] | null,
      sleepBefore: readonly SleepEntry[],
    ) => {
      if (next === null) return null;
      const child = { t: P.tasks.name(kid.ev.task), labeled: false, plan: next.slice() };
      const lj = this.newJob(n, kid, child, sleepBefore, [], region);
      kid.handles.pop();
      return lj;
    };
    // The job's own child: below it a node per level; a unit child may have labels left.
    const own: (TopNode | JobRec)[] = [];
    let owner = j.node;
    let ownerKid = j.kid;
    let prefix = [...owner.prefix, { t: j.child.t, plan: top.label ?? [] }];
    const firstLabels = labelJob(owner, ownerKid, top.cur.next, j.sleepBefore);
    if (firstLabels !== null) region.handles.push(firstLabels);
    for (const lv of below) {
      const n: TopNode = {
        kind: "node",
        depth: prefix.length,
        setupPlan: owner.setupPlan,
        prefix,
        sleep: lv.sleep.map((x) => ({ task: this.T(x.t), key: x.k })),
        kids: [],
        view: this.viewOf({ view: lv.view } as ProbeResult),
        parent: owner,
        parentKid: ownerKid,
        open: 0,
        done: false,
        queued: false,
        region,
      };
      if (own.length === 0) own.push(n);
      else ownerKid.handles.push(n);
      const c = lv.cur;
      const cev = ev(c.ev);
      const kid = this.newKid(n, { ev: cev, kids: unflatten(c.sub, ev) });
      n.kids.push(kid);
      n.open++;
      if (c.started) {
        kid.state = "started";
        const sleepBefore = n.sleep.slice();
        kid.snap = sleepBefore.length;
        n.sleep.push({
          task: cev.task,
          key: cev.vals === null || cev.vals.length === 0 ? null : cev.vals.join(","),
        });
        const lj = labelJob(n, kid, c.next, sleepBefore);
        if (lj !== null) kid.handles.push(lj);
      }
      for (const w of unflatten(lv.wut, ev)) {
        n.kids.push(this.newKid(n, w));
        n.open++;
      }
      this.enqueue(n);
      if (lv.label === null) break;
      owner = n;
      ownerKid = kid;
      prefix = [...prefix, { t: P.tasks.name(cev.task), plan: lv.label }];
    }
    own.push(...region.handles);
    region.handles.length = 0;
    region.handles.push(...own);
    const hs = j.kid.handles;
    hs.splice(hs.indexOf(j), 1, ...own);
  }

  /** A late race grew the wakeup subtree of a job that was split: undo the split, run it whole. */
  private resetRegion(r: Region): void {
    r.dead = true;
    for (const a of r.accepted) this.withdraw(a);
    const j = r.job;
    j.split = null;
    const hs = j.kid.handles;
    const at = hs.indexOf(r.handles[0]);
    const keep = hs.filter((h) => !r.handles.includes(h));
    hs.length = 0;
    hs.push(...keep);
    hs.splice(at < 0 ? hs.length : Math.min(at, hs.length), 0, j);
  }

  private markStale(j: JobRec): void {
    j.version++;
    this.hooks.rerun();
    if (j.split !== null) this.resetRegion(j.split);
    this.withdraw(j.accepted);
    j.accepted = null;
    this.unfinishJob(j);
    if (!j.running && !this.idle.includes(j)) this.idle.push(j);
  }

  /**
   * Insert a race reversal found by job `j` into the node at its depth, with
   * sequential semantics (see the module comment).
   */
  private insertFromJob(j: JobRec, ins: ExportedInsertion): void {
    let a = j.node;
    let pathKid = j.kid;
    while (a.depth > ins.depth) {
      pathKid = a.parentKid!;
      a = a.parent!;
    }
    const seq = ins.seq.map((e) => this.P.evFromJson(e));
    const rest = new Rest(seq, ins.meta);
    const view = this.stateView(a);
    const sleep = a.sleep.slice(0, pathKid.snap);
    for (const s of sleep) if (sleeperIsWI(s, view, rest)) return;
    const from = a.kids.indexOf(pathKid) + 1;
    if (this.descendKids(a, from, rest, [], view) === "inserted") this.hooks.insertion();
  }

  private descendKids(owner: TopNode, from: number, rest: Rest, u: SeqEv[], view: StateView): InsertOutcome {
    for (;;) {
      if (rest.count === 0) return "covered";
      let into: Kid | null = null;
      for (let i = from; i < owner.kids.length; i++) {
        const kid = owner.kids[i];
        if (kid.state === "dead") continue;
        const m = weakInitial(kid.ev, rest, u, view);
        if (m === null) continue;
        if (kid.ev.vals === null || kid.leaf) return "covered";
        if (m >= 0) rest.remove(m);
        u.push(kid.ev);
        into = kid;
        break;
      }
      if (into === null) {
        this.addKid(owner, rest.chain());
        return "inserted";
      }
      let h = into.handles[0];
      if (into.state === "pending") return descendInsert(into.sub, rest, u, view);
      // The tree below was handed back by a job: the insertion belongs to that job's subtree.
      if (h.kind === "node" && h.region !== null && h.region.handles[0] === h) h = h.region.job;
      if (h.kind === "job") {
        const r = descendInsert(h.sub, rest, u, view);
        if (r === "inserted") this.markStale(h);
        return r;
      }
      owner = h;
      from = 0;
    }
  }

  // ---- driving --------------------------------------------------------------------

  /** Build the roots (one per label of the setup code). False if the program cannot be split. */
  init(): boolean {
    let setupPlan: number[] = [];
    for (;;) {
      const pr = this.P.probe(setupPlan, []);
      if (!pr.reached) return false;
      const root = this.makeNode(null, null, pr, [], [], []);
      if (root === null) return false;
      this.roots.push(root);
      this.enqueue(root);
      const g = pr.setupGot;
      let p = g.length - 1;
      while (p >= 0 && g[p] + 1 >= pr.setupNs[p]) p--;
      if (p < 0) return true;
      setupPlan = g.slice(0, p);
      setupPlan.push(g[p] + 1);
    }
  }

  /** Start whatever can be started now. */
  pump(): void {
    for (;;) {
      while (this.idle.length > 0 && this.hooks.canStart()) {
        const j = this.idle.shift()!;
        if (!regionDead(j.region)) this.dispatch(j);
      }
      if (!this.hooks.canStart()) return;
      const n = this.ready[this.ready.length - 1];
      if (n === undefined) return;
      const kid = regionDead(n.region) ? undefined : n.kids.find((k) => k.state === "pending");
      if (kid === undefined) {
        this.ready.pop();
        n.queued = false;
        this.checkDone(n);
        continue;
      }
      this.start(n, kid);
    }
  }

  get finished(): boolean {
    return this.roots.every((r) => r.done) && this.idle.every((j) => regionDead(j.region));
  }
}

export type { ProgramSpec };

/** A labelled sleep entry of `task` with exactly this label (a unit child's label already run). */
function labelAsleep(sleep: readonly SleepEntry[], task: number, label: readonly number[]): boolean {
  const key = label.join(",");
  for (const s of sleep) if (s.task === task && s.key === key) return true;
  return false;
}
