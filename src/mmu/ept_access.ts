import { currentFn, modelFn } from "../engine/model-fn.js";
import type { Gen } from "../engine/op.js";
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
import {
  check_tlb_entry,
  report_walk_into_freed_table,
  tlbCatchUp,
  tlbEntries,
  tlbLookup,
} from "./vcpu_tlb.js";

/**
 * What the CPU does when the guest touches a page (hardware, not kernel code: Intel SDM vol. 3C,
 * "EPT translation", "Accessed and dirty flags for EPT" and "Caching translation information").
 * The model needs it for three things the kernel relies on: the A/D bits the CPU sets in SPTEs
 * behind mmu_lock (which is why SPTEs with volatile bits are written with XCHG), the translations
 * the CPU caches and uses until a flush, and the EPT violation that sends the vCPU to the page
 * fault handler.
 *
 * Every step announces only what the vCPU already knows: first it looks at its TLB (a read of the
 * VM's `tlb` word, which orders it against remote flushes, applied then), then it walks one level
 * per step, each SPTE named by the one read before it. A real walk cannot be interrupted by the
 * flush IPI KVM sends before it frees a page table, so a walk that a flush overtook starts again;
 * a walk that reaches a freed table anyway is one KVM freed without the flush it owed.
 */
export type EptAccess = "ok" | "ept-violation" | "ept-write-protect" | "kicked";

/**
 * A guest access by the CPU running `vcpu` (in guest mode, on its loaded root). A kick that moved
 * the vCPU out of IN_GUEST_MODE has already been taken: the access does not happen ("kicked").
 * A translation the TLB holds for the root's frame is used without touching memory, except that a
 * write through a clean one sets the Dirty bit with a locked update of the SPTE. Otherwise the CPU
 * walks the root; a present leaf that grants the access gets Accessed (and Dirty on a write) and
 * is cached; "ept-violation" when nothing present maps the gfn, "ept-write-protect" when a present
 * leaf lacks Writable.
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
    for (;;) {
      // What the vCPU believes is cached (the TLB changes only in its own steps): the lookup reads
      // the objects that entry depends on, and the flushes logged since its last look.
      const known = tlbLookup(vcpu, root.hpa, gfn);
      const objs = [mode.id, ...hostWords(vcpu)];
      if (known !== undefined) objs.push(known.table.kobj.id, known.root.kobj.id);
      yield { kind: "read", obj: kvm.tlb.id, objs, fn, step: "TLB lookup" };
      if (mode.v !== IN_GUEST_MODE) return "kicked";
      tlbCatchUp(vcpu);
      const gen = kvm.tlb.v;
      const hit = tlbLookup(vcpu, root.hpa, gfn);
      if (hit !== undefined && (!write || hit.writable)) {
        if (!check_tlb_entry(vcpu, hit, gfn, write)) return "ok";
        if (!check_host_page_live(vcpu, gfn, hit.pfn, "through a cached translation", write)) return "ok";
        if (!write || hit.dirty) return "ok";
        // The first write through a clean translation: a locked update sets Dirty in the SPTE.
        yield {
          kind: "rmw",
          obj: hit.sptep.id,
          objs: [kvm.tlb.id, hit.table.kobj.id],
          fn,
          step: "set Dirty",
        };
        if (kvm.tlb.v !== gen) continue;
        const v = hit.sptep.v;
        if (is_shadow_present_pte(v) && is_writable_pte(v) && spte_to_pfn(v) === hit.pfn) {
          hit.sptep.v = spteSetBit(spteSetBit(v, SPTE_BIT.accessed, true), SPTE_BIT.dirty, true);
          hit.dirty = true;
          return "ok";
        }
        tlbEntries(vcpu, root.hpa).delete(hit.gfn);
      } else if (hit !== undefined) {
        // A write through a read-only translation: the CPU drops it and walks.
        tlbEntries(vcpu, root.hpa).delete(hit.gfn);
      }
      const r = yield* walk(vcpu, root, gfn, write, gen, fn);
      if (r !== "restart") return r;
    }
  },
);

/**
 * The page walk, one level per step, from `root` down to a leaf or an entry that is not present.
 * "restart" when a flush happened since `gen` (the walk must start over); the leaf's step is a
 * locked update that sets Accessed (and Dirty) when the leaf grants the access.
 */
function* walk(
  vcpu: Vcpu,
  root: KvmMmuPage,
  gfn: number,
  write: boolean,
  gen: number,
  fn: string,
): Gen<EptAccess | "restart"> {
  const kvm = vcpu.kvm;
  let table: KvmMmuPage = root;
  for (let level = root.level; level >= 1; level--) {
    const sptep: Atomic = table.spt[SPTE_INDEX(kvm, gfn, level)];
    // A 4K entry can only be a leaf: its step is the locked update. Above, the step reads, and a
    // huge leaf found there gets its update as one more step.
    const r = yield* walkStep(vcpu, { sptep, table, level, gfn, write }, level === 1, gen, fn);
    if (r !== "descend") {
      if (r !== "leaf") return r;
      const u = yield* walkStep(vcpu, { sptep, table, level, gfn, write }, true, gen, fn);
      if (u === "descend" || u === "leaf") return "restart";
      return u;
    }
    if (level > 1) table = spte_to_child_pt(kvm, sptep.v, level)!;
  }
  return "ept-violation";
}

/** Where a walk step is: the entry, its table and level, and the access being made. */
interface WalkAt {
  readonly sptep: Atomic;
  readonly table: KvmMmuPage;
  readonly level: number;
  readonly gfn: number;
  readonly write: boolean;
}

/**
 * One step of the walk: a read of the entry at `level`, or (`update`) the locked update of a leaf
 * that sets Accessed/Dirty and caches the translation. "descend" to the next level, "leaf" when a
 * read found a huge leaf that grants the access (its update comes next).
 */
function* walkStep(
  vcpu: Vcpu,
  at: WalkAt,
  update: boolean,
  gen: number,
  fn: string,
): Gen<EptAccess | "restart" | "descend" | "leaf"> {
  const kvm = vcpu.kvm;
  const { sptep, table, level, gfn, write } = at;
  yield {
    kind: update ? "rmw" : "read",
    obj: sptep.id,
    objs: [kvm.tlb.id, table.kobj.id],
    fn,
    step: `EPT walk L${level}`,
  };
  if (kvm.tlb.v !== gen) return "restart";
  if (table.kobj.freed !== null) {
    report_walk_into_freed_table(vcpu, table, gfn);
    return "ok";
  }
  const v = sptep.v;
  if (!is_shadow_present_pte(v)) return "ept-violation";
  if (!is_last_spte(v, level)) return update ? "restart" : "descend";
  if (write && !is_writable_pte(v)) return "ept-write-protect";
  if (!update) return "leaf";
  if (!check_host_page_live(vcpu, gfn, spte_to_pfn(v), "through its SPTE", write)) return "ok";
  let nv = spteSetBit(v, SPTE_BIT.accessed, true);
  if (write) nv = spteSetBit(nv, SPTE_BIT.dirty, true);
  sptep.v = nv;
  const root = vcpu.root!;
  const base = gfn_round_for_level(kvm, gfn, level);
  const entry: TlbEntry = {
    gfn: base,
    pages: pagesPerHpage(kvm.geometry, level),
    pfn: spte_to_pfn(nv),
    writable: is_writable_pte(nv),
    dirty: is_dirty_spte(nv),
    root,
    sptep,
    table,
  };
  tlbEntries(vcpu, root.hpa).set(base, entry);
  return "ok";
}

/**
 * The host's page tables, when a task of the run can change them (a migration is the only thing that
 * takes a page back): a guest access reads the memory the host may be taking back.
 */
function hostWords(vcpu: Vcpu): number[] {
  const h = hostStateIfAny(vcpu.kvm);
  return h === undefined ? [] : [h.mm.id];
}
