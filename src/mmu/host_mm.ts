import { host } from "../engine/host.js";
import { currentFn } from "../engine/model-fn.js";
import { Atomic } from "../kernel/atomic.js";
import type { Kvm, Vcpu } from "./types.js";

/**
 * The host side of a VM outside struct kvm's MMU state: the memslot array and the primary MMU's
 * page tables, as shared words, and the host pages the primary MMU has taken back. A page is taken
 * back when the mmu_notifier invalidation that covered it has returned and the host moves the gfn
 * to another page (migration): from then on KVM has promised that nothing reaches the old page.
 */
export interface HostState {
  /** kvm->memslots: the active memslot array, replaced by memslot updates (read under SRCU). */
  readonly memslots: Atomic;
  /** The primary MMU's page tables behind the guest's memory. */
  readonly mm: Atomic;
  /** Host pfns released after an invalidation (ghost: the model's code never reads it). */
  readonly released: Set<number>;
}

const hostStates = new WeakMap<Kvm, HostState>();

/** The host-side words of `kvm` (created on first use, normally in a task's spawn prologue). */
export function hostState(kvm: Kvm): HostState {
  let h = hostStates.get(kvm);
  if (h === undefined) {
    h = {
      memslots: new Atomic("memslots", 0, kvm.kobj),
      mm: new Atomic("mm", 0, kvm.kobj),
      released: new Set(),
    };
    hostStates.set(kvm, h);
  }
  return h;
}

/** The host state if some task has created it (in setup), without creating it. */
export function hostStateIfAny(kvm: Kvm): HostState | undefined {
  return hostStates.get(kvm);
}

/**
 * host-page-uaf, at a guest access that reached host page `pfn`: the host has taken that page back
 * after an invalidation returned, so the guest reads or writes memory that belongs to someone else.
 */
export function check_host_page_live(
  vcpu: Vcpu,
  gfn: number,
  pfn: number,
  how: string,
  write: boolean,
): boolean {
  const h = hostStates.get(vcpu.kvm);
  if (h === undefined || !h.released.has(pfn)) return true;
  host().report({
    invariant: "host-page-uaf",
    message: `vcpu${vcpu.vcpu_id} ${write ? "wrote" : "read"} gfn ${gfn} ${how} in ${currentFn()}, reaching host page 0x${pfn.toString(16)}, which the host took back after an mmu_notifier invalidation returned`,
    details: { vcpu: vcpu.vcpu_id, gfn, pfn },
  });
  return false;
}
