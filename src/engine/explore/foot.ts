import type { AccessOp } from "../op.js";

/**
 * The footprint of one step, over canonical object ids (stable across
 * executions, see canon.ts): the object it writes (or -1), the commutativity
 * class of that write (or -1) and the objects it only reads. Two steps of
 * different tasks are dependent iff one writes an object the other touches,
 * except that two writes of one object in the same class commute.
 */
export interface Foot {
  readonly w: number;
  /** Commutativity class of the write (classId), or -1. */
  readonly c: number;
  readonly r: readonly number[];
}

const NO_READS: readonly number[] = [];

/** Commutativity classes by name, interned once per process (names travel in JSON, ids do not). */
const classIds = new Map<string, number>();
const classNames: string[] = [];

export function classId(name: string): number {
  let id = classIds.get(name);
  if (id === undefined) {
    id = classNames.length;
    classNames.push(name);
    classIds.set(name, id);
  }
  return id;
}

export function className(id: number): string | null {
  return id < 0 ? null : classNames[id];
}

/** An access writes `obj` for write/rmw/acquire/release, reads it for read/wait; `objs` are always reads. */
export function isWriteKind(kind: AccessOp["kind"]): boolean {
  return kind !== "read" && kind !== "wait";
}

/**
 * The class of an op, validated: a class on a blocking op (or a `wait`) is a model error. A plain
 * `read` may carry a class: it reads only what the class's writes leave alone.
 */
export function commuteClassOf(op: AccessOp): number {
  const name = op.commute;
  if (name === undefined) return -1;
  if (op.kind === "wait" || op.enabled !== undefined) {
    throw new Error(`${op.fn} (${op.step}): a commutativity class needs a non-blocking access`);
  }
  return classId(name);
}

export function footOf(op: AccessOp, canonObj: (rtObj: number) => number): Foot {
  const objs = op.objs;
  const obj = canonObj(op.obj);
  // A read in a class counts as a write of that class: it commutes with the class's members and
  // still conflicts with everything else on the object, plain reads included (more dependence than
  // a read has, never less).
  if (isWriteKind(op.kind) || op.commute !== undefined) {
    const c = commuteClassOf(op);
    if (objs === undefined || objs.length === 0) return { w: obj, c, r: NO_READS };
    const r: number[] = [];
    for (const o of objs) {
      const x = canonObj(o);
      if (x !== obj && !r.includes(x)) r.push(x);
    }
    return { w: obj, c, r };
  }
  if (objs === undefined || objs.length === 0) return { w: -1, c: -1, r: [obj] };
  const r: number[] = [obj];
  for (const o of objs) {
    const x = canonObj(o);
    if (!r.includes(x)) r.push(x);
  }
  return { w: -1, c: -1, r };
}

/**
 * True when `a` writes an object `b` reads or writes, whatever their classes: what may change
 * whether `b` is enabled, or what it sees.
 */
export function writesInto(a: Foot, b: Foot): boolean {
  const w = a.w;
  return w >= 0 && (w === b.w || b.r.includes(w));
}

/** Both write the same object in the same commutativity class. */
export function sameClassWrite(a: Foot, b: Foot): boolean {
  return a.c >= 0 && a.c === b.c && a.w === b.w;
}

/** Steps with these footprints do not commute (when taken by different tasks). */
export function conflict(a: Foot, b: Foot): boolean {
  if (sameClassWrite(a, b)) return a.r.includes(b.w) || b.r.includes(a.w);
  return writesInto(a, b) || writesInto(b, a);
}

export function sameFoot(a: Foot, b: Foot): boolean {
  if (a.w !== b.w || a.c !== b.c || a.r.length !== b.r.length) return false;
  for (let i = 0; i < a.r.length; i++) if (a.r[i] !== b.r[i]) return false;
  return true;
}
