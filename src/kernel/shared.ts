import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import type { AccessKind, AccessOp } from "../engine/op.js";
import type { KObject } from "./alloc.js";

/**
 * A piece of shared kernel memory the engine can see: it has an object id for
 * ops and traces, and optionally belongs to an allocation whose lifetime every
 * access is checked against.
 */
export class Shared {
  readonly id: number;
  readonly name: string;
  readonly owner: KObject | null;
  /** Objects every access to this one also reads: the owning allocation. */
  readonly deps: readonly number[] | undefined;

  constructor(name: string, owner: KObject | null = null) {
    this.name = owner ? `${owner.name}.${name}` : name;
    this.id = host().newObject(this.name);
    this.owner = owner;
    this.deps = owner ? [owner.id] : undefined;
  }
}

/** Build the op announcing an access to `s` by the running model function. */
export function op(kind: AccessKind, s: Shared, step: string, enabled?: () => boolean): AccessOp {
  return { kind, obj: s.id, objs: s.deps, fn: currentFn(), step, enabled };
}

/**
 * The op of a write to `s` that commutes with every other write to `s` in class `cls` (see
 * AccessOp.commute): the primitive guarantees that two such writes, in either order, leave the
 * same state and give the same results, and that neither can block.
 */
export function commutingOp(kind: AccessKind, s: Shared, step: string, cls: string): AccessOp {
  return { kind, obj: s.id, objs: s.deps, fn: currentFn(), step, commute: cls };
}

/** Called right after an access resumes: reports a use-after-free if the owner is gone. */
export function touch(s: Shared, step: string): void {
  const o = s.owner;
  if (o !== null && o.freed !== null) reportUseAfterFree(o, `${step} on ${s.name}`);
}

export function reportUseAfterFree(o: KObject, what: string): void {
  const t = host().current;
  const f = o.freed!;
  host().report({
    invariant: "use-after-free",
    message: `use-after-free: ${t.name} in ${currentFn()} did ${what}, but ${o.name} was freed by ${f.task} in ${f.fn} at step ${f.step}`,
    details: {
      object: o.name,
      kind: o.kind,
      access: { task: t.name, fn: currentFn(), what, step: host().stepIndex },
      free: f,
    },
  });
}
