import { host } from "./host.js";
import type { AccessOp, Gen } from "./op.js";

/**
 * Bulk steps: how a timed run stays exact at sizes it cannot step through one access at a time.
 *
 * A task that repeats a block of work nobody else can observe (tearing down a subtree that is already
 * unreachable, say) may run the block once for real under a ProfileRecorder, which notes every access it
 * yields and every cost it charges, and then stand for each further copy with one access op carrying the
 * recorded profile. The checker sees that op as one ordinary access; the simulator prices it as the whole
 * block: every recorded access at its own price, every recorded charge, and as many steps as the block
 * took. Nothing here knows what the block means: the layer above decides what is safe to summarise and
 * carries out the block's effects on its own state.
 */

export interface BulkPart {
  /** A representative of the accesses merged into this part (same kind, function, step, object shape). */
  readonly op: AccessOp;
  readonly count: number;
}

export interface BulkProfile {
  /** Steps the block took. */
  readonly steps: number;
  readonly parts: readonly BulkPart[];
  /** host().cost() charges made during the block, per kind. */
  readonly costs: readonly { readonly kind: string; readonly units: number }[];
}

/** The same object names up to their numbers: `sp#12(L1,gfn=512).spte[3]` and `sp#40(L1,gfn=1024).spte[9]`. */
function shape(name: string): string {
  return name.replace(/\d+/g, "#");
}

/** Notes what a block of model code does, so that further copies of it can be summarised. */
export class ProfileRecorder {
  private steps = 0;
  private readonly parts = new Map<string, { op: AccessOp; count: number }>();
  private readonly costs = new Map<string, number>();
  /** Why the block cannot stand for its copies (it blocked, spawned, or chose), or null. */
  invalid: string | null = null;

  /** Record one access (or, for a bulk access, everything it stands for, `times` over). */
  access(op: AccessOp, times = 1): void {
    if (op.bulk !== undefined) {
      this.merge(op.bulk, times);
      return;
    }
    const key = `${op.kind}|${op.fn}|${op.step}|${shape(host().objectName(op.obj))}`;
    const p = this.parts.get(key);
    if (p === undefined) {
      const { enabled: _e, objs: _o, ...rest } = op;
      this.parts.set(key, { op: rest, count: times });
    } else p.count += times;
    this.steps += times;
  }

  cost(kind: string, units: number): void {
    this.costs.set(kind, (this.costs.get(kind) ?? 0) + units);
  }

  /** Add `times` copies of an already recorded block. */
  merge(b: BulkProfile, times: number): void {
    for (const p of b.parts) this.access(p.op, p.count * times);
    for (const c of b.costs) this.cost(c.kind, c.units * times);
  }

  profile(): BulkProfile {
    return {
      steps: this.steps,
      parts: [...this.parts.values()].map((p) => ({ op: p.op, count: p.count })),
      costs: [...this.costs.entries()].map(([kind, units]) => ({ kind, units })),
    };
  }
}

/**
 * Run `gen` to completion on behalf of the current task, forwarding everything it yields, and note it in
 * `rec`. An access that is not enabled when yielded (the block waited for someone), a spawn or a data
 * choice make the block depend on others, so the recorder is marked invalid.
 */
export function* recordProfile<R>(gen: Gen<R>, rec: ProfileRecorder): Gen<R> {
  const task = host().current;
  task.recorders ??= [];
  const stack = task.recorders;
  stack.push(rec);
  try {
    let r = gen.next();
    while (!r.done) {
      const y = r.value;
      if (y.kind === "spawn") rec.invalid ??= `spawns ${y.name}`;
      else if (y.kind === "choose") rec.invalid ??= `chooses at ${y.fn}/${y.step}`;
      else {
        if (y.enabled !== undefined && !y.enabled()) rec.invalid ??= `waits at ${y.fn}/${y.step}`;
        // Outer recorders see this op too, as it passes through their own loops.
        rec.access(y);
      }
      // The stack is popped while suspended, so that costs charged by other tasks are not noted.
      stack.splice(stack.indexOf(rec), 1);
      const v = yield y;
      stack.push(rec);
      r = gen.next(v);
    }
    return r.value;
  } finally {
    const i = stack.indexOf(rec);
    if (i >= 0) stack.splice(i, 1);
  }
}

/**
 * The access that stands for `times` copies of a recorded block: an rmw of `obj` (the object the layer
 * above treats as the block's owner) labelled `fn`/`step`.
 */
export function bulkAccess(
  profile: BulkProfile,
  times: number,
  obj: number,
  fn: string,
  step: string,
): AccessOp {
  const bulk: BulkProfile =
    times === 1
      ? profile
      : {
          steps: profile.steps * times,
          parts: profile.parts.map((p) => ({ op: p.op, count: p.count * times })),
          costs: profile.costs.map((c) => ({ kind: c.kind, units: c.units * times })),
        };
  return { kind: "rmw", obj, fn, step, bulk };
}
