import { host } from "../../engine/host.js";
import { currentFn } from "../../engine/model-fn.js";
import { kvm_mmu_max_gfn } from "../kvm.js";
import { describeSpte, is_last_spte, is_shadow_present_pte } from "../spte.js";
import type { Kvm } from "../types.js";

/**
 * spte-beyond-max-gfn: no present leaf SPTE maps a gfn past kvm_mmu_max_gfn(). Every TDP MMU zap
 * and walk stops at tdp_mmu_max_gfn_exclusive() (host MAXPHYADDR), so such an SPTE is never zapped
 * by a memslot deletion, an mmu_notifier invalidation or the teardown of its root: the host page
 * stays mapped and its page tables leak (kvm_mmu_uninit_tdp_mmu()'s WARN in 86931ff7207b's report).
 * Checked where an SPTE setter installs the value (the kernel's own promise is at the fault, which
 * never gets as far for such a gfn since that commit).
 */
export function check_spte_within_max_gfn(
  kvm: Kvm,
  sptep: string,
  gfn: number,
  level: number,
  spte: number,
): void {
  if (!is_shadow_present_pte(spte) || !is_last_spte(spte, level) || gfn <= kvm_mmu_max_gfn(kvm)) return;
  host().report({
    invariant: "spte-beyond-max-gfn",
    message: `${currentFn()} installed ${sptep} (${describeSpte(spte, level)}) for gfn ${gfn}, past kvm_mmu_max_gfn() = ${kvm_mmu_max_gfn(kvm)} (host MAXPHYADDR): no zap reaches it`,
    details: { gfn, level, maxGfn: kvm_mmu_max_gfn(kvm) },
  });
}
