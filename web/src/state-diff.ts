import type { TraceState } from "../../src/trace/state-schema.js";

/**
 * A state flattened to one entry per field of each kernel object, keyed by the object's name, so two
 * states compare field by field even when objects appear, disappear or change order:
 *   root/root#1/refcount, lock/kvm.mmu_lock/holders, rcu/readers, wq/kvm-zap/items/w#1/pending,
 *   task/2/status, pages/live.
 * Values are JSON text (arrays compare whole).
 */
export function flattenState(s: TraceState): Map<string, string> {
  const m = new Map<string, string>();
  const put = (prefix: string, o: object, skip: readonly string[] = []) => {
    for (const [k, v] of Object.entries(o)) if (!skip.includes(k)) m.set(`${prefix}/${k}`, JSON.stringify(v));
  };
  for (const r of s.roots) put(`root/${r.name}`, r, ["name"]);
  for (const l of s.locks) put(`lock/${l.name}`, l, ["name"]);
  put("rcu", s.rcu);
  for (const w of s.workqueues) {
    put(`wq/${w.name}`, w, ["name", "items"]);
    m.set(`wq/${w.name}/items`, JSON.stringify(w.items.map((i) => i.name)));
    for (const it of w.items) put(`wq/${w.name}/items/${it.name}`, it, ["name"]);
  }
  for (const t of s.tasks) put(`task/${t.id}`, t, ["id"]);
  put("pages", s.pages);
  return m;
}

/** What changed between two states: field keys whose value differs, with the previous value. */
export class StateDiff {
  private readonly before: Map<string, string>;
  private readonly changedKeys = new Set<string>();

  constructor(prev: TraceState | undefined, cur: TraceState) {
    this.before = prev ? flattenState(prev) : new Map();
    const after = flattenState(cur);
    if (!prev) return;
    for (const [k, v] of after) if (this.before.get(k) !== v) this.changedKeys.add(k);
  }

  /** The field (or, for a prefix such as "root/root#1", any field of the object) changed. */
  changed(key: string): boolean {
    if (this.changedKeys.has(key)) return true;
    for (const k of this.changedKeys) if (k.startsWith(`${key}/`)) return true;
    return false;
  }

  /** The object did not exist in the previous state. */
  isNew(prefix: string): boolean {
    if (this.before.size === 0) return false;
    for (const k of this.before.keys()) if (k.startsWith(`${prefix}/`)) return false;
    return true;
  }

  /** The field's previous value as JSON text, or undefined. */
  was(key: string): string | undefined {
    return this.before.get(key);
  }

  get size(): number {
    return this.changedKeys.size;
  }

  keys(): string[] {
    return [...this.changedKeys];
  }
}
