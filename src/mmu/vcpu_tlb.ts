import { host } from "../engine/host.js";
import { currentFn, modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
import type { Kvm, KvmMmuPage, TlbEntry, Vcpu } from "./types.js";

/**
 * The CPU's TLB of each vCPU, as far as the TDP MMU's correctness depends on it. Translations are
 * cached per root frame (the EPTP tag), so a root freed and a new one allocated at the same frame
 * would inherit the old root's translations: that is what the flush on root load is for. KVM
 * never reads a TLB; it only removes translations, by a remote flush (every vCPU, a gfn range) or
 * a local flush of the current root. Those removals are the only writes, and they commute with
 * each other, so the TLB contents carry no object of their own: a guest access is ordered against
 * remote flushes through the VM's `tlb` word, and against its own vCPU's flushes by program order.
 */

/** The translations a vCPU caches under root frame `hpa` (created on first use). */
export function tlbEntries(vcpu: Vcpu, hpa: number): Map<number, TlbEntry> {
  let m = vcpu.tlb.byHpa.get(hpa);
  if (m === undefined) {
    m = new Map();
    vcpu.tlb.byHpa.set(hpa, m);
  }
  return m;
}

/** The cached translation covering `gfn` under frame `hpa`, if any. */
export function tlbLookup(vcpu: Vcpu, hpa: number, gfn: number): TlbEntry | undefined {
  const m = vcpu.tlb.byHpa.get(hpa);
  if (m === undefined) return undefined;
  for (const e of m.values()) if (gfn >= e.gfn && gfn < e.gfn + e.pages) return e;
  return undefined;
}

/**
 * A remote flush of [start, end) on every vCPU, called after it has written the VM's `tlb` word:
 * logged, and applied by each vCPU when it next looks at its TLB (tlbCatchUp).
 */
export function tlbFlushRange(kvm: Kvm, start: number, end: number): void {
  kvm.tlbFlushLog.push({ gen: kvm.tlb.v, start, end });
}

/** Apply the remote flushes this vCPU has not seen yet; call only in a step that reads the `tlb` word. */
export function tlbCatchUp(vcpu: Vcpu): void {
  const t = vcpu.tlb;
  for (const f of vcpu.kvm.tlbFlushLog) {
    if (f.gen <= t.gen) continue;
    for (const m of t.byHpa.values()) {
      for (const [k, e] of m) if (e.gfn < f.end && e.gfn + e.pages > f.start) m.delete(k);
    }
  }
  t.gen = vcpu.kvm.tlb.v;
}

/**
 * vmx_flush_tlb_current() (vmx.c, reached through kvm_x86_flush_tlb_current(); any version): flush
 * this CPU's translations for the root being loaded. Local to the CPU: no shared access, only the
 * price of the INVEPT.
 */
export const kvm_x86_flush_tlb_current = modelFn(
  "kvm_x86_flush_tlb_current",
  // biome-ignore lint/correctness/useYield: the flush is local to the CPU, it makes no shared access
  function* (vcpu: Vcpu): Gen<void> {
    host().cost("tlb_flush_local", 1);
    if (vcpu.root !== null) vcpu.tlb.byHpa.delete(vcpu.root.hpa);
  },
);

/** kvm_vcpu_flush_tlb_all() (x86.c, any version): KVM_REQ_TLB_FLUSH, serviced before entry. */
export const kvm_vcpu_flush_tlb_all = modelFn(
  "kvm_vcpu_flush_tlb_all",
  // biome-ignore lint/correctness/useYield: the flush is local to the CPU, it makes no shared access
  function* (vcpu: Vcpu): Gen<void> {
    host().cost("tlb_flush_local", 1);
    vcpu.tlb.byHpa.clear();
  },
);

/**
 * The check behind `tlb-stale-access`, at a guest access that used a cached translation: KVM
 * believes that translation gone once the root it was walked in has been freed (its frame may have
 * been reused by the root now loaded) or once the page table holding its SPTE has been freed.
 * Either way the guest reaches memory through a mapping KVM no longer tracks.
 */
export function check_tlb_entry(vcpu: Vcpu, e: TlbEntry, gfn: number, write: boolean): boolean {
  const why =
    e.root !== vcpu.root
      ? `it was cached under ${e.root.kobj.name}, freed since; ${vcpu.root?.kobj.name ?? "the root"} now has its frame (hpa ${e.root.hpa})`
      : e.table.kobj.freed !== null
        ? `the page table holding its SPTE (${e.table.kobj.name}) was freed`
        : null;
  if (why === null) return true;
  host().report({
    invariant: "tlb-stale-access",
    message: `vcpu${vcpu.vcpu_id} ${write ? "wrote" : "read"} gfn ${gfn} through a stale TLB entry in ${currentFn()}: ${why}`,
    details: { vcpu: vcpu.vcpu_id, gfn, hpa: e.root.hpa, root: e.root.kobj.name, table: e.table.kobj.name },
  });
  return false;
}

/**
 * tlb-stale-access, for a walk: the CPU stepped into a page table that was freed while no flush
 * came between (a flush would have restarted the walk). KVM freed a table the CPU could still reach.
 */
export function report_walk_into_freed_table(vcpu: Vcpu, table: KvmMmuPage, gfn: number): void {
  host().report({
    invariant: "tlb-stale-access",
    message: `vcpu${vcpu.vcpu_id}'s page walk for gfn ${gfn} stepped into ${table.kobj.name} in ${currentFn()}, which was freed without a TLB flush in between`,
    details: { vcpu: vcpu.vcpu_id, gfn, table: table.kobj.name },
  });
}
