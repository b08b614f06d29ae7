import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { machine } from "./machine.js";
import { drain_store_buffer } from "./memory.js";
import { op, reportUseAfterFree } from "./shared.js";

export interface FreeSite {
  readonly task: string;
  readonly fn: string;
  readonly step: number;
}

/**
 * An allocation with a lifetime. Shared words created with it as owner are
 * checked on every access: touching one after kfree is a use-after-free that
 * names both the access site and the free site.
 */
export class KObject {
  readonly id: number;
  readonly name: string;
  readonly kind: string;
  freed: FreeSite | null = null;
  readonly deps = undefined;
  readonly owner = null;

  constructor(kind: string, name: string) {
    this.kind = kind;
    this.name = name;
    this.id = host().newObject(name);
  }
}

/** kzalloc()/kmem_cache_zalloc(): a new live allocation. Not a shared access. */
export function kzalloc(kind: string, name: string): KObject {
  const o = new KObject(kind, name);
  machine().live.add(o);
  return o;
}

/** kfree(): a write to the allocation, so it is ordered against every access to it. */
export function* kfree(o: KObject): Gen<void> {
  // The freeing task's own stores to the object land before the free (conservative under TSO).
  yield* drain_store_buffer("kfree");
  yield op("write", o, "kfree");
  if (o.freed !== null) {
    const f = o.freed;
    host().report({
      invariant: "double-free",
      message: `double free of ${o.name} in ${currentFn()}; first freed by ${f.task} in ${f.fn} at step ${f.step}`,
      details: { object: o.name, first: f },
    });
    return;
  }
  const t = host().current;
  o.freed = { task: t.name, fn: currentFn(), step: host().stepIndex };
  machine().live.delete(o);
}

/** Check that `o` is still live, for code that reads plain immutable fields of it. */
export function* kobj_access(o: KObject, what: string): Gen<void> {
  yield op("read", o, what);
  if (o.freed !== null) reportUseAfterFree(o, what);
}

/** Live allocations of the given kinds (all when omitted): what a leak check reports. */
export function liveObjects(kinds?: readonly string[]): KObject[] {
  const out: KObject[] = [];
  for (const o of machine().live) if (kinds === undefined || kinds.includes(o.kind)) out.push(o);
  return out;
}
