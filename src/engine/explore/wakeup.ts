import { conflict, type Foot, writesInto } from "./foot.js";

/**
 * Wakeup trees and sleep sets of Optimal-DPOR (Abdulla, Aronis, Jonsson,
 * Sagonas: "Source Sets: A Foundation for Optimal Dynamic Partial Order
 * Reduction", JACM 2017), extended with data-choice labels and blocking ops.
 *
 * An event is one step of a task: its access footprint plus the label (the
 * data-choice values made while the step ran). Events with different labels
 * are different events. A `unit` event (key "*") stands for every label of the
 * step: it is explored by enumerating all of them.
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

export interface WNode {
  readonly ev: SeqEv;
  readonly kids: WNode[];
}

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

export const UNIT_KEY = "*";

function firstIdx(w: readonly SeqEv[], task: number): number {
  for (let i = 0; i < w.length; i++) if (w[i].task === task) return i;
  return -1;
}

/** True when no earlier event of `w` happens-before w[m] (within w). */
function isInitial(w: readonly SeqEv[], m: number): boolean {
  const e = w[m];
  for (let l = 0; l < m; l++) {
    const x = w[l];
    if (x.task === e.task || conflict(x.foot, e.foot)) return false;
    if (x.spawns !== null && x.spawns.includes(e.task)) return false;
  }
  return true;
}

function indepAll(f: Foot, task: number, w: readonly SeqEv[]): boolean {
  for (const x of w) {
    if (x.task === task || conflict(f, x.foot)) return false;
  }
  return true;
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

/**
 * Whether sleeper `s` is a weak initial of `w` at the node: either its step is
 * an initial of w with a label it covers, or the task does not occur in w and
 * its next step commutes with all of w (only for unit sleepers: a labelled
 * sleeper does not cover the other labels of that step).
 */
function sleeperIsWI(s: SleepEntry, view: StateView, w: readonly SeqEv[]): boolean {
  const m = firstIdx(w, s.task);
  if (m >= 0) return isInitial(w, m) && keyCovers(s.key, w[m]);
  if (s.key !== null) return false;
  const f = view.footAt(s.task);
  return f !== undefined && indepAll(f, s.task, w);
}

/**
 * May tree child `c` (whose task does not occur in w) stand in front of w as a
 * weak initial? Its step must commute with w, cover all its labels, and be
 * known to be enabled there: a blocked step would make the branch infeasible,
 * and w would be lost with it.
 */
function absentOK(c: SeqEv, u: readonly SeqEv[], view: StateView): boolean {
  if (c.key !== UNIT_KEY && c.key !== "") return false;
  if (!c.blocking) return true;
  if (!view.enabledAt(c.task)) return false;
  for (const x of u) {
    if (x.task === c.task || writesInto(x.foot, c.foot)) return false;
  }
  return true;
}

function chain(w: readonly SeqEv[], from: number): WNode {
  const root: WNode = { ev: w[from], kids: [] };
  let cur = root;
  for (let i = from + 1; i < w.length; i++) {
    const n: WNode = { ev: w[i], kids: [] };
    cur.kids.push(n);
    cur = n;
  }
  return root;
}

export type InsertOutcome = "inserted" | "covered" | "asleep";

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
): InsertOutcome {
  for (const s of sleep) if (sleeperIsWI(s, view, seq)) return "asleep";
  let w: SeqEv[] = seq.slice();
  let kids = wut;
  const u: SeqEv[] = [];
  for (;;) {
    if (w.length === 0) return "covered";
    let next: WNode | null = null;
    for (const c of kids) {
      const m = firstIdx(w, c.ev.task);
      if (m >= 0) {
        if (!isInitial(w, m) || !keyCovers(c.ev.key, w[m])) continue;
        if (c.kids.length === 0) return "covered";
        w = w.slice(0, m).concat(w.slice(m + 1));
      } else {
        if (!absentOK(c.ev, u, view) || !indepAll(c.ev.foot, c.ev.task, w)) continue;
        if (c.kids.length === 0) return "covered";
      }
      u.push(c.ev);
      next = c;
      break;
    }
    if (next === null) {
      kids.push(chain(w, 0));
      return "inserted";
    }
    kids = next.kids;
  }
}

/** Number of nodes in a forest (for memory statistics). */
export function treeSize(kids: readonly WNode[]): number {
  let n = 0;
  const stack = [...kids];
  while (stack.length) {
    const x = stack.pop()!;
    n++;
    for (const k of x.kids) stack.push(k);
  }
  return n;
}
