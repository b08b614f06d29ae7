import type { AccessOp } from "../op.js";

/**
 * The footprint of one step, over canonical object ids (stable across
 * executions, see canon.ts): the object it writes (or -1) and the objects it
 * only reads. Two steps of different tasks are dependent iff one writes an
 * object the other touches.
 */
export interface Foot {
  readonly w: number;
  readonly r: readonly number[];
}

const NO_READS: readonly number[] = [];

/** An access writes `obj` for write/rmw/acquire/release, reads it for read/wait; `objs` are always reads. */
export function isWriteKind(kind: AccessOp["kind"]): boolean {
  return kind !== "read" && kind !== "wait";
}

export function footOf(op: AccessOp, canonObj: (rtObj: number) => number): Foot {
  const objs = op.objs;
  const obj = canonObj(op.obj);
  if (isWriteKind(op.kind)) {
    if (objs === undefined || objs.length === 0) return { w: obj, r: NO_READS };
    const r: number[] = [];
    for (const o of objs) {
      const c = canonObj(o);
      if (c !== obj && !r.includes(c)) r.push(c);
    }
    return { w: obj, r };
  }
  if (objs === undefined || objs.length === 0) return { w: -1, r: [obj] };
  const r: number[] = [obj];
  for (const o of objs) {
    const c = canonObj(o);
    if (!r.includes(c)) r.push(c);
  }
  return { w: -1, r };
}

/** True when `a` writes an object `b` reads or writes. */
export function writesInto(a: Foot, b: Foot): boolean {
  const w = a.w;
  return w >= 0 && (w === b.w || b.r.includes(w));
}

/** Steps with these footprints do not commute (when taken by different tasks). */
export function conflict(a: Foot, b: Foot): boolean {
  return writesInto(a, b) || writesInto(b, a);
}

export function sameFoot(a: Foot, b: Foot): boolean {
  if (a.w !== b.w || a.r.length !== b.r.length) return false;
  for (let i = 0; i < a.r.length; i++) if (a.r[i] !== b.r[i]) return false;
  return true;
}
