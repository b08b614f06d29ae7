import type { Gen } from "../engine/op.js";
import { type Atomic, READ_ONCE, testBit, try_cmpxchg, WRITE_ONCE, withBit, xchg } from "../kernel/atomic.js";
import { WARN_ON_ONCE } from "../kernel/warn.js";
import type { RmapContext } from "./rmap_context.js";
import { is_shadow_present_pte, is_writable_pte, SHADOW_NONPRESENT_VALUE, SPTE_BIT } from "./spte.js";

/*
 * The SPTE operations the shadow MMU's rmap code uses (mmu.c, spte.h/spte.c),
 * over the encoding of spte.ts. spte.ts has no A/D-disabled mode, which the
 * access-tracking path of aging needs, so it is added here:
 *
 * - SPTE_TDP_AD_DISABLED: the kernel keeps the A/D mode in bits 52-53; the
 *   model uses bit 52 alone (enabled = clear, disabled = set).
 * - Access-tracking saved bits: the kernel parks R and X in bits 54-55, above
 *   what a JS number holds exactly, so the model parks them in bits 3 and 5
 *   (the EPT memory-type field, which the model never uses).
 */

/** SPTE_TDP_AD_DISABLED as one bit (see above). */
export const SPTE_AD_DISABLED_BIT = 52;
/** SHADOW_ACC_TRACK_SAVED_BITS_SHIFT, moved low (see above): R (bit 0) goes to bit 3, X (bit 2) to bit 5. */
export const SHADOW_ACC_TRACK_SAVED_BITS_SHIFT = 3;

const RWX_BITS = [SPTE_BIT.readable, SPTE_BIT.writable, SPTE_BIT.executable] as const;
const SAVED_BITS = [SPTE_BIT.readable, SPTE_BIT.executable] as const;

/** spte_ad_enabled(): the CPU maintains A/D in this SPTE. */
export function spte_ad_enabled(spte: number): boolean {
  return !testBit(spte, SPTE_AD_DISABLED_BIT);
}

/** is_access_track_spte(): an A/D-disabled SPTE made inaccessible so the next access faults. */
export function is_access_track_spte(spte: number): boolean {
  return !spte_ad_enabled(spte) && RWX_BITS.every((b) => !testBit(spte, b));
}

/** is_accessed_spte() as spte.h defines it for both A/D modes (spte.ts only knows the A bit). */
export function spteIsYoung(spte: number): boolean {
  return spte_ad_enabled(spte) ? testBit(spte, SPTE_BIT.accessed) : !is_access_track_spte(spte);
}

/** is_mmu_writable_spte(). */
export function is_mmu_writable_spte(spte: number): boolean {
  return testBit(spte, SPTE_BIT.mmuWritable);
}

/**
 * mark_spte_for_access_track() (spte.c, 6.x): with A/D, just drop A; without,
 * save R/X and clear RWX so the next access faults and the fast path restores it.
 */
export function mark_spte_for_access_track(spte: number): number {
  if (spte_ad_enabled(spte)) return withBit(spte, SPTE_BIT.accessed, false);
  if (is_access_track_spte(spte)) return spte;
  let v = spte;
  for (const b of SAVED_BITS) {
    WARN_ON_ONCE(testBit(v, b + SHADOW_ACC_TRACK_SAVED_BITS_SHIFT), "access-track saved bit already set");
    if (testBit(v, b)) v = withBit(v, b + SHADOW_ACC_TRACK_SAVED_BITS_SHIFT, true);
  }
  for (const b of RWX_BITS) v = withBit(v, b, false);
  return withBit(v, SPTE_BIT.accessed, false);
}

/** An A/D-disabled copy of a leaf SPTE (what make_spte builds when A/D bits are off for the MMU). */
export function spteWithAdDisabled(spte: number): number {
  return withBit(withBit(spte, SPTE_AD_DISABLED_BIT, true), SPTE_BIT.accessed, false);
}

/** mmu_spte_get_lockless() (mmu.c, x86_64): one READ_ONCE of the SPTE. */
export function* mmu_spte_get_lockless(sptep: Atomic): Gen<number> {
  return yield* READ_ONCE(sptep);
}

/** mmu_spte_set() (mmu.c): install a new SPTE where none was present. */
export function* mmu_spte_set(ctx: RmapContext, sptep: Atomic, spte: number): Gen<void> {
  WARN_ON_ONCE(is_shadow_present_pte(sptep.v), "is_shadow_present_pte(*sptep)");
  yield* WRITE_ONCE(sptep, spte);
  ctx.observer?.spteReset(sptep);
}

/**
 * mmu_spte_clear_track_bits() (mmu.c): zap one SPTE and harvest its A/D state.
 * A present leaf may have A/D set by the CPU at any moment (volatile bits), so
 * the model always takes the kernel's xchg path. Returns the old SPTE.
 */
export function* mmu_spte_clear_track_bits(ctx: RmapContext, sptep: Atomic): Gen<number> {
  const old = yield* xchg(sptep, SHADOW_NONPRESENT_VALUE);
  ctx.observer?.spteReset(sptep);
  return old;
}

/**
 * mmu_spte_update() (mmu.c, 6.13+): replace a present SPTE, atomically since
 * the CPU may be setting A/D; true when the change needs a TLB flush
 * (write access the MMU granted was taken away).
 */
export function* mmu_spte_update(sptep: Atomic, spte: number): Gen<boolean> {
  const old = yield* xchg(sptep, spte);
  if (!is_shadow_present_pte(old)) return false;
  return is_mmu_writable_spte(old) && !is_mmu_writable_spte(spte);
}

/**
 * The CPU writing through an SPTE: the page walker sets A and D with a locked
 * RMW (hardware A/D assist). Only a present, writable, A/D-enabled SPTE gets
 * there; anything else would fault instead. Returns whether D was set.
 */
export function* cpuWriteSetsDirty(ctx: RmapContext, sptep: Atomic): Gen<boolean> {
  let old = yield* READ_ONCE(sptep);
  for (;;) {
    if (!is_shadow_present_pte(old) || !is_writable_pte(old) || !spte_ad_enabled(old)) return false;
    const next = withBit(withBit(old, SPTE_BIT.accessed, true), SPTE_BIT.dirty, true);
    const r = yield* try_cmpxchg(sptep, old, next);
    if (r.ok) break;
    old = r.old;
  }
  ctx.observer?.dirtySet(sptep);
  return true;
}
