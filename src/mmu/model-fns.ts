import { registeredModelFns } from "../engine/model-fn.js";
// Every module that defines model functions, loaded for the registry.
import "./kvm_destroy.js";
import "./mmu_notifier.js";
import "./nx_huge_page_list.js";
import "./nx_huge_page_recovery.js";
import "./pte_list.js";
import "./rmap.js";
import "./rmap_lock.js";
import "./tdp_mmu_age.js";
import "./tdp_mmu_dirty.js";
import "./tdp_mmu_invalidate.js";
import "./tdp_mmu_iter_roots.js";
import "./tdp_mmu_map.js";
import "./tdp_mmu_root.js";
import "./tdp_mmu_spte.js";
import "./tdp_mmu_walks.js";
import "./tdp_mmu_zap.js";
import "./tlb.js";
import "./vcpu.js";
import "./vcpu_request.js";
import "./workloads.js";

/** The kernel names a variant may override: every model function of the MMU model. */
export function modelFnNames(): readonly string[] {
  return [...registeredModelFns()].sort();
}
