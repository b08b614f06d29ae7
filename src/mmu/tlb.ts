import { host } from "../engine/host.js";
import { modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import { atomic_fetch_add } from "../kernel/atomic.js";
import { machine } from "../kernel/machine.js";
import { ghost_tlb_flushed } from "./invariants/pages.js";
import { pagesPerHpage } from "./kvm.js";
import type { Kvm } from "./types.js";
import { tlbFlushRange } from "./vcpu_tlb.js";

/**
 * Remote TLB flushes. The model has no TLBs of its own: what matters is *when*
 * a flush happens relative to SPTE changes and to mmu_lock being dropped, so a
 * flush is one read-modify-write of the VM's `tlb` word (every flush conflicts
 * with every other, and the explorers order it against the lock ops around it),
 * plus a price for the simulator and the bookkeeping of invariant 17.
 */
function* flush(kvm: Kvm, start: number, end: number): Gen<void> {
  // The price grows with the vCPUs that must be interrupted: only those in guest mode get an IPI.
  host().cost("tlb_flush", 1);
  host().cost("tlb_flush_ipi", runningVcpus(kvm));
  yield* atomic_fetch_add(kvm.tlb, 1);
  kvm.stats.remoteTlbFlushes++;
  machine().tlbFlushes++;
  ghost_tlb_flushed(kvm, start, end);
  tlbFlushRange(kvm, start, end);
}

/** vCPUs in guest mode now (a pricing input, read without an access: it decides no protocol step). */
export function runningVcpus(kvm: Kvm): number {
  let n = 0;
  for (const v of kvm.vcpus) if (v.inGuest) n++;
  return n;
}

/** kvm_flush_remote_tlbs() (virt/kvm/kvm_main.c, any version): flush every vCPU's TLB for this VM. */
export const kvm_flush_remote_tlbs = modelFn("kvm_flush_remote_tlbs", function* (kvm: Kvm): Gen<void> {
  yield* flush(kvm, 0, Number.POSITIVE_INFINITY);
});

/**
 * kvm_flush_remote_tlbs_range() (v6.6+; kvm_flush_remote_tlbs_with_address before): flush the
 * translations of [start_gfn, start_gfn + nr_pages). Hosts without ranged flushes fall back to a
 * full flush; either way the range is what the caller may rely on.
 */
export const kvm_flush_remote_tlbs_range = modelFn(
  "kvm_flush_remote_tlbs_range",
  function* (kvm: Kvm, start_gfn: number, nr_pages: number): Gen<void> {
    yield* flush(kvm, start_gfn, start_gfn + nr_pages);
  },
);

/** kvm_flush_remote_tlbs_gfn() (v6.6+): flush what one SPTE at `level` mapped. */
export function* kvm_flush_remote_tlbs_gfn(kvm: Kvm, gfn: number, level: number): Gen<void> {
  const n = pagesPerHpage(kvm.geometry, level);
  yield* kvm_flush_remote_tlbs_range(kvm, gfn - (gfn % n), n);
}
