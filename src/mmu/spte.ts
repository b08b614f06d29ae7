import { andMask, testBit, withBit } from "../kernel/atomic.js";

/**
 * SPTE encoding (arch/x86/kvm/mmu/spte.h, EPT flavour). Values are JS numbers
 * below 2^53; the bits below 12 sit where EPT puts them. The software
 * host-/MMU-writable bits, which EPT keeps at 57/58, are moved to 50/51 so the
 * word stays an exact JS integer. The PFN lives in bits 12..49.
 */
export const SPTE_BIT = {
  readable: 0,
  writable: 1,
  executable: 2,
  huge: 7,
  accessed: 8,
  dirty: 9,
  mmuPresent: 11,
  hostWritable: 50,
  mmuWritable: 51,
} as const;

/** REMOVED_SPTE / FROZEN_SPTE: a non-present marker only the freezer may change. */
export const FROZEN_SPTE = 0x5a0;
/** SHADOW_NONPRESENT_VALUE without TDX: 0. */
export const SHADOW_NONPRESENT_VALUE = 0;

const PFN_SHIFT = 12;
const PFN_LIMIT = 2 ** 38;

export function is_shadow_present_pte(spte: number): boolean {
  return testBit(spte, SPTE_BIT.mmuPresent) && spte !== FROZEN_SPTE;
}

export function is_frozen_spte(spte: number): boolean {
  return spte === FROZEN_SPTE;
}

export function is_large_pte(spte: number): boolean {
  return testBit(spte, SPTE_BIT.huge);
}

/** is_last_spte(): a leaf is at level 1, or has the huge bit. */
export function is_last_spte(spte: number, level: number): boolean {
  return level === 1 || is_large_pte(spte);
}

export function is_writable_pte(spte: number): boolean {
  return testBit(spte, SPTE_BIT.writable);
}

export function is_accessed_spte(spte: number): boolean {
  return testBit(spte, SPTE_BIT.accessed);
}

export function is_dirty_spte(spte: number): boolean {
  return testBit(spte, SPTE_BIT.dirty);
}

export function spte_to_pfn(spte: number): number {
  return Math.floor(andMask(spte, (PFN_LIMIT - 1) * 2 ** PFN_SHIFT) / 2 ** PFN_SHIFT);
}

export function spteSetBit(spte: number, bit: number, on: boolean): number {
  return withBit(spte, bit, on);
}

export interface LeafSpec {
  readonly pfn: number;
  readonly level: number;
  readonly writable: boolean;
  readonly accessed?: boolean;
  readonly dirty?: boolean;
}

/** make_spte(): a present leaf (huge above level 1). */
export function make_leaf_spte(s: LeafSpec): number {
  if (s.pfn < 0 || s.pfn >= PFN_LIMIT) throw new RangeError(`pfn ${s.pfn} out of range`);
  let v = s.pfn * 2 ** PFN_SHIFT;
  v = withBit(v, SPTE_BIT.mmuPresent, true);
  v = withBit(v, SPTE_BIT.readable, true);
  v = withBit(v, SPTE_BIT.executable, true);
  // A mapping the host lets KVM write is host- and MMU-writable: write-protection may clear
  // Writable later, and the fast page fault may set it back, but only where MMU-writable is set.
  if (s.writable) {
    v = withBit(v, SPTE_BIT.hostWritable, true);
    v = withBit(v, SPTE_BIT.mmuWritable, true);
    v = withBit(v, SPTE_BIT.writable, true);
  }
  if (s.level > 1) v = withBit(v, SPTE_BIT.huge, true);
  if (s.accessed ?? true) v = withBit(v, SPTE_BIT.accessed, true);
  if (s.dirty) v = withBit(v, SPTE_BIT.dirty, true);
  return v;
}

/** make_nonleaf_spte(): points at a child page table, identified here by its page id as pfn. */
export function make_nonleaf_spte(childPfn: number): number {
  let v = childPfn * 2 ** PFN_SHIFT;
  v = withBit(v, SPTE_BIT.mmuPresent, true);
  v = withBit(v, SPTE_BIT.readable, true);
  v = withBit(v, SPTE_BIT.writable, true);
  v = withBit(v, SPTE_BIT.executable, true);
  v = withBit(v, SPTE_BIT.accessed, true);
  return v;
}

export function describeSpte(spte: number, level: number): string {
  if (spte === FROZEN_SPTE) return "FROZEN";
  if (!is_shadow_present_pte(spte)) return "-";
  const flags = `${is_writable_pte(spte) ? "W" : ""}${is_accessed_spte(spte) ? "A" : ""}${is_dirty_spte(spte) ? "D" : ""}`;
  return is_last_spte(spte, level) ? `leaf pfn=${spte_to_pfn(spte)} ${flags}` : `table #${spte_to_pfn(spte)}`;
}
