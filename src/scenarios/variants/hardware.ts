import type { Gen } from "../../engine/op.js";
import type { Vcpu } from "../../mmu/types.js";
import { defineVariant } from "../define.js";

/**
 * kvm_mmu_load() without its local flush. Freeing a root does not flush the TLBs, on the grounds
 * that whoever loads a root flushes it; without that flush a root allocated at a freed root's frame
 * inherits the translations the CPU cached for the old one (tlb-stale-access).
 */
export const skipRootLoadFlush = defineVariant({
  name: "skip-root-load-flush",
  description: "kvm_mmu_load() does not call kvm_x86_flush_tlb_current() for the new root",
  overrides: {
    kvm_x86_flush_tlb_current: function* (_orig: unknown, _vcpu: Vcpu): Gen<void> {},
  },
});
