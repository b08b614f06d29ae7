import { host } from "../../engine/host.js";
import { currentFn } from "../../engine/model-fn.js";
import { peekEntries } from "../../kernel/rculist.js";
import { roleInvalid } from "../role.js";
import type { Kvm, KvmMmuPage } from "../types.js";

/** The roots a walk starting now must visit: the valid ones on the list (seed 001's property). */
export function validRootsNow(kvm: Kvm): KvmMmuPage[] {
  return peekEntries(kvm.tdp_mmu_roots).filter((r) => !roleInvalid(r.role.v));
}

/**
 * Seed 001's completeness property, checked when a walk ends: every root valid when it started
 * that is still valid and still referenced was visited. Roots created meanwhile need no visit
 * (they were built after the state change the walk publishes), and a root whose count already
 * reached 0 is dying (being unlinked, or going defunct), so no update is owed to it either.
 */
export function check_walk_complete(before: readonly KvmMmuPage[], visited: ReadonlySet<KvmMmuPage>): void {
  for (const r of before) {
    if (!visited.has(r) && !roleInvalid(r.role.v) && r.kobj.freed === null && r.tdp_mmu_root_count.v > 0) {
      host().report({
        invariant: "walk-complete",
        message: `the root walk ended without visiting ${r.kobj.name}, valid from start to end (in ${currentFn()})`,
        details: { root: r.kobj.name, visited: [...visited].map((v) => v.kobj.name) },
      });
    }
  }
}
