import type { Foot } from "./foot.js";

/**
 * Wakeup trees and sleep sets of Optimal-DPOR (Abdulla, Aronis, Jonsson,
 * Sagonas: "Source Sets: A Foundation for Optimal Dynamic Partial Order
 * Reduction", JACM 2017), extended with data-choice labels and blocking ops.
 *
 * An event is one step of a task: its access footprint plus the label (the
 * data-choice values made while the step ran). Events with different labels
 * are different events. A `unit` event (key "*") stands for every label of the
 * step: it is explored by enumerating all of them.
 *
 * Wakeup sequences can be long (every step between the two racing ones that
 * does not depend on the first), so nothing here recurses over a tree or a
 * sequence, and the tests inside insertion cost O(tasks + footprint), not
 * O(sequence length): happens-before within the sequence comes from the
 * vector clocks of the execution it was cut from.
 */
export interface SeqEv {
  /** Canonical task id. */
  readonly task: number;
  /** Data-choice values of the step, or null for a unit event (all labels). */
  readonly vals: readonly number[] | null;
  /** vals joined with ",", or "*" for a unit event. */
  readonly key: string;
  readonly foot: Foot;
  /** The op has an enabled() predicate: the task may be blocked on it. */
  readonly blocking: boolean;
  /** Canonical ids of the tasks this step spawned. */
  readonly spawns: readonly number[] | null;
}

export type WNode = Tree<SeqEv>;

/** A sleeping step: `key` null means every label of the task's next step is covered. */
export interface SleepEntry {
  readonly task: number;
  readonly key: string | null;
}

/** What insertion needs to know about the state at the node being inserted into. */
export interface StateView {
  /** Footprint of `task`'s next op at that state (undefined if the task does not exist there). */
  footAt(task: number): Foot | undefined;
  /** Whether `task` is enabled at that state. */
  enabledAt(task: number): boolean;
}

/**
 * A sequence to insert, with what its execution knew: for each event, the
 * runtime task id, the task-local index, and a vector clock (indexed by runtime
 * task id) such that w[l] happens-before w[m] within the sequence iff
 * vc[m][rt[l]] > loc[l].
 */
export interface SeqMeta {
  readonly rt: readonly number[];
  readonly loc: readonly number[];
  readonly vc: readonly (readonly number[])[];
}

export const UNIT_KEY = "*";

function classKey(w: number, c: number): number {
  return w * 4096 + c;
}

/** A tree child (or sleeper) with this key covers event `e` of the same task. */
function keyCovers(key: string | null, e: SeqEv): boolean {
  // "" is a step that made no data choice: its only label.
  if (key === null || key === UNIT_KEY || key === "") return true;
  return e.key !== UNIT_KEY && key === e.key;
}

/** Some entry of the sleep set already covers executions that start with `e`. */
export function sleepCovers(sleep: readonly SleepEntry[], e: SeqEv): boolean {
  for (const s of sleep) if (s.task === e.task && keyCovers(s.key, e)) return true;
  return false;
}

/** What remains of the sequence during the descent, with O(1) lookups. */
export class Rest {
  readonly alive: boolean[];
  count: number;
  /** Per canonical task: indices of its events, and how many were removed. */
  private readonly byTask = new Map<number, { idx: number[]; head: number }>();
  /** Per runtime task: local index of its first remaining event. */
  private readonly earliest = new Map<number, number>();
  private readonly writes = new Map<number, number>();
  /** Writes per (object, commutativity class), keyed by classKey(). */
  private readonly classWrites = new Map<number, number>();
  private readonly reads = new Map<number, number>();

  constructor(
    readonly w: readonly SeqEv[],
    readonly meta: SeqMeta,
  ) {
    this.alive = new Array<boolean>(w.length).fill(true);
    this.count = w.length;
    for (let i = 0; i < w.length; i++) {
      const e = w[i];
      let t = this.byTask.get(e.task);
      if (t === undefined) {
        t = { idx: [], head: 0 };
        this.byTask.set(e.task, t);
        this.earliest.set(meta.rt[i], meta.loc[i]);
      }
      t.idx.push(i);
      this.count_(e.foot, 1);
    }
  }

  private count_(f: Foot, d: number): void {
    if (f.w >= 0) this.writes.set(f.w, (this.writes.get(f.w) ?? 0) + d);
    if (f.c >= 0) {
      const k = classKey(f.w, f.c);
      this.classWrites.set(k, (this.classWrites.get(k) ?? 0) + d);
    }
    for (const o of f.r) this.reads.set(o, (this.reads.get(o) ?? 0) + d);
  }

  /** Index of the task's first remaining event, or -1. */
  first(task: number): number {
    const t = this.byTask.get(task);
    if (t === undefined || t.head >= t.idx.length) return -1;
    return t.idx[t.head];
  }

  /** No remaining event before w[m] happens-before it. */
  isInitial(m: number): boolean {
    const vc = this.meta.vc[m];
    const own = this.meta.rt[m];
    for (const [t, loc] of this.earliest) {
      if (t !== own && (vc[t] ?? 0) > loc) return false;
    }
    return true;
  }

  /** A step with footprint f (of a task absent from the rest) commutes with all of it. */
  independent(f: Foot): boolean {
    if (f.w >= 0) {
      if ((this.reads.get(f.w) ?? 0) > 0) return false;
      // Writes of the same object in f's own class commute with it.
      const same = f.c >= 0 ? (this.classWrites.get(classKey(f.w, f.c)) ?? 0) : 0;
      if ((this.writes.get(f.w) ?? 0) > same) return false;
    }
    for (const o of f.r) if ((this.writes.get(o) ?? 0) > 0) return false;
    return true;
  }

  /** Remove w[m], which must be the first remaining event of its task. */
  remove(m: number): void {
    const e = this.w[m];
    const t = this.byTask.get(e.task)!;
    t.head++;
    this.alive[m] = false;
    this.count--;
    this.count_(e.foot, -1);
    const rt = this.meta.rt[m];
    if (t.head < t.idx.length) this.earliest.set(rt, this.meta.loc[t.idx[t.head]]);
    else this.earliest.delete(rt);
  }

  chain(): WNode {
    let root: WNode | null = null;
    let cur: WNode | null = null;
    for (let i = 0; i < this.w.length; i++) {
      if (!this.alive[i]) continue;
      const n: WNode = { ev: this.w[i], kids: [] };
      if (cur === null) root = n;
      else cur.kids.push(n);
      cur = n;
    }
    return root!;
  }
}

/**
 * Whether sleeper `s` is a weak initial of the sequence at the node: either
 * its step is an initial with a label it covers, or the task does not occur and
 * its next step commutes with everything (only for unit sleepers: a labelled
 * sleeper does not cover the other labels of that step).
 */
export function sleeperIsWI(s: SleepEntry, view: StateView, rest: Rest): boolean {
  const m = rest.first(s.task);
  if (m >= 0) return rest.isInitial(m) && keyCovers(s.key, rest.w[m]);
  if (s.key !== null) return false;
  const f = view.footAt(s.task);
  return f !== undefined && rest.independent(f);
}

/**
 * May tree child `c` (whose task does not occur in the rest) stand in front of
 * it as a weak initial? Its step must commute with the rest, cover all its
 * labels, and be known to be enabled there: a blocked step would make the
 * branch infeasible and the sequence would be lost with it. `u` is the path of
 * tree events above `c`.
 */
function absentOK(c: SeqEv, u: readonly SeqEv[], view: StateView): boolean {
  if (c.key !== UNIT_KEY && c.key !== "") return false;
  if (!c.blocking) return true;
  if (!view.enabledAt(c.task)) return false;
  const f = c.foot;
  for (const x of u) {
    if (x.task === c.task) return false;
    const w = x.foot.w;
    if (w >= 0 && (w === f.w || f.r.includes(w))) return false;
  }
  return true;
}

export type InsertOutcome = "inserted" | "covered" | "asleep";

/**
 * Is tree event `c` a weak initial of what remains? Returns the index of its
 * event in the rest (to remove), -1 when it stands in front as an absent weak
 * initial, or null when it is not a weak initial.
 */
export function weakInitial(c: SeqEv, rest: Rest, u: readonly SeqEv[], view: StateView): number | null {
  const m = rest.first(c.task);
  if (m >= 0) return rest.isInitial(m) && keyCovers(c.key, rest.w[m]) ? m : null;
  return absentOK(c, u, view) && rest.independent(c.foot) ? -1 : null;
}

/** The descent of insert_[E] from `kids`, with `u` the tree path above them. */
export function descendInsert(kids: WNode[], rest: Rest, u: SeqEv[], view: StateView): InsertOutcome {
  for (;;) {
    if (rest.count === 0) return "covered";
    let next: WNode | null = null;
    for (const c of kids) {
      const m = weakInitial(c.ev, rest, u, view);
      if (m === null) continue;
      if (c.kids.length === 0) return "covered";
      if (m >= 0) rest.remove(m);
      u.push(c.ev);
      next = c;
      break;
    }
    if (next === null) {
      kids.push(rest.chain());
      return "inserted";
    }
    kids = next.kids;
  }
}

/**
 * insert_[E](w, wut(E)) guarded by the sleep-set test of Optimal-DPOR: skip if
 * a sleeper is a weak initial of w; otherwise descend through the first child
 * that is a weak initial of what remains of w; reaching a leaf means w is
 * already covered; else w's remainder becomes a new rightmost branch.
 */
export function insertSequence(
  wut: WNode[],
  sleep: readonly SleepEntry[],
  view: StateView,
  seq: readonly SeqEv[],
  meta: SeqMeta,
): InsertOutcome {
  const rest = new Rest(seq, meta);
  for (const s of sleep) if (sleeperIsWI(s, view, rest)) return "asleep";
  return descendInsert(wut, rest, [], view);
}

/** Number of nodes in a forest (for memory statistics). */
export function treeSize(kids: readonly WNode[]): number {
  let n = 0;
  const stack: WNode[] = [...kids];
  while (stack.length > 0) {
    const x = stack.pop()!;
    n++;
    for (const k of x.kids) stack.push(k);
  }
  return n;
}

/** A forest node with payload B (wakeup trees, and their JSON form). */
export interface Tree<B> {
  readonly ev: B;
  readonly kids: Tree<B>[];
}

/** Rebuild a forest with new payloads, without recursion; children keep their order. */
export function mapForest<A, B>(kids: readonly Tree<A>[], f: (a: A) => B): Tree<B>[] {
  const out: Tree<B>[] = [];
  const stack: { src: readonly Tree<A>[]; dst: Tree<B>[] }[] = [{ src: kids, dst: out }];
  while (stack.length > 0) {
    const { src, dst } = stack.pop()!;
    for (const n of src) {
      const m: Tree<B> = { ev: f(n.ev), kids: [] };
      dst.push(m);
      if (n.kids.length > 0) stack.push({ src: n.kids, dst: m.kids });
    }
  }
  return out;
}

/** Copy a forest's structure (events are immutable and shared). */
export function cloneForest(kids: readonly WNode[]): WNode[] {
  return mapForest(kids, (e) => e);
}

/**
 * A forest as flat arrays (pre-order, each node's parent index or -1): what
 * checkpoints and worker messages carry, since JSON.stringify and
 * structuredClone recurse and wakeup sequences can be thousands of steps long.
 */
export interface FlatForest<B> {
  readonly evs: readonly B[];
  readonly parent: readonly number[];
}

export function flatten<A, B>(kids: readonly Tree<A>[], f: (a: A) => B): FlatForest<B> {
  const evs: B[] = [];
  const parent: number[] = [];
  const stack: { n: Tree<A>; p: number }[] = [];
  for (let i = kids.length - 1; i >= 0; i--) stack.push({ n: kids[i], p: -1 });
  while (stack.length > 0) {
    const { n, p } = stack.pop()!;
    const me = evs.length;
    evs.push(f(n.ev));
    parent.push(p);
    for (let i = n.kids.length - 1; i >= 0; i--) stack.push({ n: n.kids[i], p: me });
  }
  return { evs, parent };
}

export function unflatten<A, B>(flat: FlatForest<A>, f: (a: A) => B): Tree<B>[] {
  const roots: Tree<B>[] = [];
  const nodes: Tree<B>[] = [];
  for (let i = 0; i < flat.evs.length; i++) {
    const n: Tree<B> = { ev: f(flat.evs[i]), kids: [] };
    nodes.push(n);
    const p = flat.parent[i];
    if (p < 0) roots.push(n);
    else nodes[p].kids.push(n);
  }
  return roots;
}
