import { currentFn, modelFn } from "../engine/model-fn.js";
import type { AccessOp, Gen } from "../engine/op.js";
import type { Atomic } from "../kernel/atomic.js";
import { check_host_page_live, hostStateIfAny } from "./host_mm.js";
import { pagesPerHpage } from "./kvm.js";
import {
  is_dirty_spte,
  is_last_spte,
  is_shadow_present_pte,
  is_writable_pte,
  SPTE_BIT,
  spte_to_pfn,
  spteSetBit,
} from "./spte.js";
import { gfn_round_for_level, SPTE_INDEX, spte_to_child_pt } from "./tdp_iter.js";
import type { KvmMmuPage, TlbEntry, Vcpu } from "./types.js";
import { IN_GUEST_MODE, vcpu_mode } from "./vcpu.js";
import { check_tlb_entry, tlbEntries, tlbLookup } from "./vcpu_tlb.js";

/**
 * What the CPU does when the guest touches a page (hardware, not kernel code: Intel SDM vol. 3C,
 * "EPT translation", "Accessed and dirty flags for EPT" and "Caching translation information").
 * The model needs it for three things the kernel relies on: the A/D bits the CPU sets in SPTEs
 * behind mmu_lock (which is why SPTEs with volatile bits are written with XCHG), the translations
 * the CPU caches and uses until a flush, and the EPT violation that sends the vCPU to the page
 * fault handler.
 *
 * The walk is one step. A real walk is not atomic against memory, but it is against the flush
 * IPI that KVM sends before it frees a page table, which is what makes a one-step walk faithful:
 * the CPU is either before the flush (and the table still exists) or after it.
 */
export type EptAccess = "ok" | "ept-violation" | "kicked";

interface PathStep {
  readonly sptep: Atomic;
  readonly level: number;
  readonly table: KvmMmuPage;
}

/** The SPTEs the walk for `gfn` visits now, from the root down to a leaf or a non-present entry. */
function walkPath(root: KvmMmuPage, gfn: number, vcpu: Vcpu): PathStep[] {
  const kvm = vcpu.kvm;
  const out: PathStep[] = [];
  let table: KvmMmuPage | null = root;
  for (let level = root.level; table !== null && level >= 1; level--) {
    const sptep: Atomic = table.spt[SPTE_INDEX(kvm, gfn, level)];
    out.push({ sptep, level, table });
    const v = sptep.v;
    if (!is_shadow_present_pte(v) || is_last_spte(v, level)) break;
    table = spte_to_child_pt(kvm, v, level);
  }
  return out;
}

function samePath(a: readonly PathStep[], b: readonly PathStep[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i].sptep !== b[i].sptep) return false;
  return true;
}

/** The leaf at the end of `path` grants the access. */
function grants(path: readonly PathStep[], write: boolean): boolean {
  const last = path[path.length - 1];
  const v = last.sptep.v;
  return is_shadow_present_pte(v) && is_last_spte(v, last.level) && (!write || is_writable_pte(v));
}

/**
 * A guest access by the CPU running `vcpu` (in guest mode, on its loaded root). A kick that moved
 * the vCPU out of IN_GUEST_MODE has already been taken: the access does not happen ("kicked").
 * A translation the TLB holds for the root's frame is used without touching memory, except that a
 * write through a clean one sets the Dirty bit with a locked update of the SPTE. Otherwise the CPU
 * walks the root; a present leaf that grants the access gets Accessed (and Dirty on a write) and
 * is cached; anything else is an EPT violation.
 */
export const ept_access = modelFn(
  "ept_access",
  function* (vcpu: Vcpu, gfn: number, write: boolean): Gen<EptAccess> {
    const kvm = vcpu.kvm;
    const root = vcpu.root;
    if (root === null || !vcpu.inGuest)
      throw new Error(`ept_access: vcpu${vcpu.vcpu_id} is not in the guest`);
    const mode = vcpu_mode(vcpu);
    const fn = currentFn();
    const hit = tlbLookup(vcpu, root.hpa, gfn);
    if (hit !== undefined && (!write || hit.writable)) {
      const done = yield* useCached(vcpu, hit, gfn, write, mode, fn);
      if (done !== null) return done;
    } else if (hit !== undefined) {
      // A write through a read-only translation: the CPU drops it and walks again.
      tlbEntries(vcpu, root.hpa).delete(hit.gfn);
    }
    for (;;) {
      const path = walkPath(root, gfn, vcpu);
      const last = path[path.length - 1];
      const objs: number[] = [kvm.tlb.id, mode.id, ...hostWords(vcpu)];
      for (const s of path) {
        if (s !== last) objs.push(s.sptep.id);
        objs.push(s.table.kobj.id);
      }
      const granted = grants(path, write);
      const op: AccessOp = { kind: granted ? "rmw" : "read", obj: last.sptep.id, objs, fn, step: "EPT walk" };
      yield op;
      if (mode.v !== IN_GUEST_MODE) return "kicked";
      // The walk saw what is there when it runs; if that is not what it announced, it walks again.
      const now = walkPath(root, gfn, vcpu);
      if (!samePath(path, now) || grants(now, write) !== granted) continue;
      if (!granted) return "ept-violation";
      if (!check_host_page_live(vcpu, gfn, spte_to_pfn(last.sptep.v), "through its SPTE", write)) return "ok";
      let v = spteSetBit(last.sptep.v, SPTE_BIT.accessed, true);
      if (write) v = spteSetBit(v, SPTE_BIT.dirty, true);
      last.sptep.v = v;
      const base = gfn_round_for_level(kvm, gfn, last.level);
      const entry: TlbEntry = {
        gfn: base,
        pages: pagesPerHpage(kvm.geometry, last.level),
        pfn: spte_to_pfn(v),
        writable: is_writable_pte(v),
        dirty: is_dirty_spte(v),
        root,
        sptep: last.sptep,
        table: last.table,
      };
      tlbEntries(vcpu, root.hpa).set(base, entry);
      return "ok";
    }
  },
);

/** A flush may have dropped the translation while the access waited to run: then the CPU walks. */
function stillCached(vcpu: Vcpu, hit: TlbEntry, gfn: number): boolean {
  return tlbLookup(vcpu, hit.root.hpa, gfn) === hit;
}

/**
 * The host's page tables, when a task of the run can change them (a migration is the only thing that
 * takes a page back): a guest access reads the memory the host may be taking back.
 */
function hostWords(vcpu: Vcpu): number[] {
  const h = hostStateIfAny(vcpu.kvm);
  return h === undefined ? [] : [h.mm.id];
}

/**
 * A TLB hit. Returns the outcome, or null when the CPU must walk after all: a flush dropped the
 * translation before the access ran, or a write found the SPTE in memory no longer granting it.
 */
function* useCached(
  vcpu: Vcpu,
  hit: TlbEntry,
  gfn: number,
  write: boolean,
  mode: Atomic,
  fn: string,
): Gen<EptAccess | null> {
  const kvm = vcpu.kvm;
  const objs = [kvm.tlb.id, mode.id, hit.table.kobj.id, hit.root.kobj.id, ...hostWords(vcpu)];
  if (!write || hit.dirty) {
    // No memory access: ordered only against flushes, kicks and the frees that make it stale.
    yield { kind: "read", obj: kvm.tlb.id, objs, fn, step: "TLB hit" };
    if (mode.v !== IN_GUEST_MODE) return "kicked";
    if (!stillCached(vcpu, hit, gfn)) return null;
    if (check_tlb_entry(vcpu, hit, gfn, write))
      check_host_page_live(vcpu, gfn, hit.pfn, "through a cached translation", write);
    return "ok";
  }
  // The first write through a clean translation: a locked update sets Dirty in the SPTE.
  yield { kind: "rmw", obj: hit.sptep.id, objs, fn, step: "set Dirty through TLB" };
  if (mode.v !== IN_GUEST_MODE) return "kicked";
  if (!stillCached(vcpu, hit, gfn)) return null;
  if (!check_tlb_entry(vcpu, hit, gfn, write)) return "ok";
  if (!check_host_page_live(vcpu, gfn, hit.pfn, "through a cached translation", write)) return "ok";
  const v = hit.sptep.v;
  if (is_shadow_present_pte(v) && is_writable_pte(v) && spte_to_pfn(v) === hit.pfn) {
    hit.sptep.v = spteSetBit(spteSetBit(v, SPTE_BIT.accessed, true), SPTE_BIT.dirty, true);
    hit.dirty = true;
    return "ok";
  }
  tlbEntries(vcpu, hit.root.hpa).delete(hit.gfn);
  return null;
}
