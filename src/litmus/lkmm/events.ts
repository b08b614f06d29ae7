import { type LitmusStmt, type LitmusThread, type Operand, returnsOld, returnsValue } from "../parse.js";

/**
 * A thread's events along one control-flow path, as herd7 builds them from linux-kernel.def: each
 * primitive becomes read (R), write (W) and fence (F) events with the annotation the .def gives it
 * (tools/memory-model/linux-kernel.def, linux-kernel.bell, lock.cat at torvalds/linux master).
 * The values reads return are not known yet: a value is a function of them (Sym), and a path
 * records the guesses it made (branch taken, cmpxchg succeeded, lock found free) as constraints
 * that a candidate execution's values must satisfy.
 */

/** An event's annotation: the access kind of linux-kernel.bell, the barrier kind, or a lock event. */
export type Tag =
  | "init"
  | "once"
  | "acquire"
  | "release"
  | "noreturn"
  | "mb"
  | "rmb"
  | "wmb"
  | "before-atomic"
  | "after-atomic"
  | "after-spinlock"
  | "after-unlock-lock"
  | "barrier"
  | "rcu-lock"
  | "rcu-unlock"
  | "sync-rcu"
  /** spin_lock()'s read and write, spin_unlock()'s write (lock.cat's LKR, LKW, UL). */
  | "lkr"
  | "lkw"
  | "ul";

/** A value as a function of the values the path's reads return (indices into the path's events). */
export interface Sym {
  readonly deps: readonly number[];
  readonly at: (readValue: (event: number) => number) => number;
}

export interface PathEvent {
  readonly kind: "R" | "W" | "F";
  readonly tag: Tag;
  readonly loc?: string;
  /** Part of an atomic RMW instruction (the cat's RMW set), including a failed cmpxchg's read. */
  readonly rmw: boolean;
  /** For a write: its value. */
  readonly value?: Sym;
  /** Reads of this path whose values the written value is computed from (the data relation). */
  readonly data: readonly number[];
  /** Reads of this path whose values decide an if this event is inside (the ctrl relation). */
  readonly ctrl: readonly number[];
  /** The source text it comes from, for witnesses. */
  readonly text: string;
}

/** A guess the path made: `left == right` (or !=) must hold of the execution's values. */
export interface Constraint {
  readonly left: Sym;
  readonly right: Sym;
  readonly equal: boolean;
}

export interface ThreadPath {
  readonly events: readonly PathEvent[];
  /** Read and write of each successful RMW, lock acquisitions included (the rmw relation). */
  readonly rmw: readonly (readonly [number, number])[];
  readonly constraints: readonly Constraint[];
  readonly regs: ReadonlyMap<string, Sym>;
}

const konst = (c: number): Sym => ({ deps: [], at: () => c });
const readOf = (e: number): Sym => ({ deps: [e], at: (rv) => rv(e) });
const combine = (a: Sym, b: Sym, f: (x: number, y: number) => number): Sym => ({
  deps: [...new Set([...a.deps, ...b.deps])],
  at: (rv) => f(a.at(rv), b.at(rv)),
});

const FENCE_TAGS: Record<string, Tag> = {
  smp_mb: "mb",
  smp_rmb: "rmb",
  smp_wmb: "wmb",
  smp_mb__before_atomic: "before-atomic",
  smp_mb__after_atomic: "after-atomic",
  smp_mb__after_spinlock: "after-spinlock",
  smp_mb__after_unlock_lock: "after-unlock-lock",
  barrier: "barrier",
  rcu_read_lock: "rcu-lock",
  rcu_read_unlock: "rcu-unlock",
  synchronize_rcu: "sync-rcu",
};

interface State {
  events: PathEvent[];
  rmw: [number, number][];
  constraints: Constraint[];
  regs: Map<string, Sym>;
}

const clone = (s: State): State => ({
  events: [...s.events],
  rmw: [...s.rmw],
  constraints: [...s.constraints],
  regs: new Map(s.regs),
});

/**
 * Every control-flow path of `thread`: both arms of each if, success and failure of each cmpxchg.
 * A guess that constants alone refute is dropped here; the others are checked per execution.
 */
export function threadPaths(thread: LitmusThread): ThreadPath[] {
  const start: State = {
    events: [],
    rmw: [],
    constraints: [],
    regs: new Map(thread.regs.map((r) => [r, konst(0)])),
  };
  const out: ThreadPath[] = [];
  walk(thread.stmts, 0, start, [], (s) => out.push(s));
  return out;
}

type NewEvent = Omit<PathEvent, "ctrl" | "data"> & { readonly data?: readonly number[] };

/** Append `e` to the path, inside the ifs whose reads are `ctrl`; its index. */
function emit(st: State, ctrl: readonly number[], e: NewEvent): number {
  st.events.push({ data: [], ...e, ctrl });
  return st.events.length - 1;
}

function walk(
  stmts: readonly LitmusStmt[],
  pc: number,
  st: State,
  ctrl: readonly number[],
  done: (s: State) => void,
): void {
  if (pc === stmts.length) {
    done(st);
    return;
  }
  const next = (s: State) => walk(stmts, pc + 1, s, ctrl, done);
  const s = stmts[pc];
  const sym = (o: Operand): Sym => ("const" in o ? konst(o.const) : st.regs.get(o.reg)!);
  const push = (e: NewEvent) => emit(st, ctrl, e);
  switch (s.op) {
    case "set":
      st.regs.set(s.reg, sym(s.value));
      next(st);
      return;
    case "store": {
      const value = sym(s.value);
      const tag = s.kind === "smp_store_release" ? "release" : "once";
      push({ kind: "W", tag, loc: s.loc, rmw: false, value, data: value.deps, text: storeText(s) });
      next(st);
      return;
    }
    case "load": {
      const e = push({
        kind: "R",
        tag: s.kind === "smp_load_acquire" ? "acquire" : "once",
        loc: s.loc,
        rmw: false,
        text: `${s.reg} = ${s.kind}(${s.loc})`,
      });
      st.regs.set(s.reg, readOf(e));
      next(st);
      return;
    }
    case "fence":
      push({ kind: "F", tag: FENCE_TAGS[s.kind], rmw: false, text: `${s.kind}()` });
      next(st);
      return;
    case "lock": {
      // lock.cat: an LKR that reads the lock free and its LKW, paired by rmw; a spin that reads it
      // taken is not an event of any complete execution.
      const text = `spin_lock(${s.loc})`;
      const r = push({ kind: "R", tag: "lkr", loc: s.loc, rmw: false, text });
      const w = push({ kind: "W", tag: "lkw", loc: s.loc, rmw: false, value: konst(1), text });
      st.rmw.push([r, w]);
      st.constraints.push({ left: readOf(r), right: konst(0), equal: true });
      next(st);
      return;
    }
    case "unlock":
      push({ kind: "W", tag: "ul", loc: s.loc, rmw: false, value: konst(0), text: `spin_unlock(${s.loc})` });
      next(st);
      return;
    case "if": {
      const left = sym(s.cond.left);
      const right = sym(s.cond.right);
      const guard = [...new Set([...ctrl, ...left.deps, ...right.deps])];
      for (const taken of [true, false]) {
        const equal = (s.cond.op === "==") === taken;
        if (refuted(left, right, equal)) continue;
        const b = clone(st);
        b.constraints.push({ left, right, equal });
        walk(taken ? s.thenArm : s.elseArm, 0, b, guard, next);
      }
      return;
    }
    case "rmw":
      for (const succeeds of s.kind === "cmpxchg" ? [true, false] : [true]) {
        const b = clone(st);
        rmw(s, succeeds, b, ctrl, sym);
        next(b);
      }
      return;
  }
}

/** Whether constants alone show that `left == right` is not `equal`. */
function refuted(left: Sym, right: Sym, equal: boolean): boolean {
  return (
    left.deps.length === 0 && right.deps.length === 0 && (left.at(() => 0) === right.at(() => 0)) !== equal
  );
}

/** The events of an RMW that succeeds or (a cmpxchg) fails. */
function rmw(
  s: Extract<LitmusStmt, { op: "rmw" }>,
  succeeds: boolean,
  st: State,
  ctrl: readonly number[],
  sym: (o: Operand) => Sym,
): void {
  const text = rmwText(s);
  const push = (e: NewEvent) => emit(st, ctrl, e);
  const operand = sym(s.value);
  // A fully ordered RMW that succeeds acts as smp_mb() before and after it; a failed cmpxchg is a
  // relaxed read (Documentation/atomic_t.txt; litmus-tests/cmpxchg-fail-unordered-1.litmus).
  const full = succeeds && s.order === "mb" && returnsValue(s.kind);
  if (full) push({ kind: "F", tag: "mb", rmw: false, text: `${text}: implied smp_mb()` });
  const readTag: Tag = !returnsValue(s.kind)
    ? "noreturn"
    : succeeds && s.order === "acquire"
      ? "acquire"
      : "once";
  const r = push({ kind: "R", tag: readTag, loc: s.loc, rmw: true, text });
  const old = readOf(r);
  let result = old;
  if (s.kind === "cmpxchg") st.constraints.push({ left: old, right: sym(s.expected!), equal: succeeds });
  if (succeeds) {
    const value =
      s.kind === "xchg" || s.kind === "cmpxchg"
        ? operand
        : combine(old, operand, /sub|dec/.test(s.kind) ? (x, y) => x - y : (x, y) => x + y);
    const w = push({
      kind: "W",
      tag: s.order === "release" && returnsValue(s.kind) ? "release" : "once",
      loc: s.loc,
      rmw: true,
      value,
      // The value's dependence on this RMW's own read is inside one instruction, not a data
      // dependency between events.
      data: operand.deps,
      text,
    });
    st.rmw.push([r, w]);
    result = value;
  }
  if (full) push({ kind: "F", tag: "mb", rmw: false, text: `${text}: implied smp_mb()` });
  if (s.reg !== undefined) st.regs.set(s.reg, returnsOld(s.kind) || !succeeds ? old : result);
}

const operandText = (o: Operand): string => ("const" in o ? String(o.const) : o.reg);

function storeText(s: Extract<LitmusStmt, { op: "store" }>): string {
  return `${s.kind}(${s.loc}, ${operandText(s.value)})`;
}

function rmwText(s: Extract<LitmusStmt, { op: "rmw" }>): string {
  const name = s.order === "mb" || !returnsValue(s.kind) ? s.kind : `${s.kind}_${s.order}`;
  const args =
    s.kind === "cmpxchg"
      ? [s.loc, operandText(s.expected!), operandText(s.value)]
      : s.kind === "xchg"
        ? [s.loc, operandText(s.value)]
        : /add|sub/.test(s.kind)
          ? [operandText(s.value), s.loc]
          : [s.loc];
  return `${s.reg !== undefined ? `${s.reg} = ` : ""}${name}(${args.join(", ")})`;
}
