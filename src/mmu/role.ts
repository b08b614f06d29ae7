import { BitField } from "../kernel/atomic.js";

/**
 * union kvm_mmu_page_role (arch/x86/include/asm/kvm_host.h, layout of v6.14+;
 * is_mirror is unused before 6.14). A root's role is one 32-bit word: root
 * reuse compares the whole word, so an invalid root never matches the role a
 * vCPU asks for (which has invalid=0).
 */
export const ROLE = {
  level: new BitField("level", 0, 4),
  has_4_byte_gpte: new BitField("has_4_byte_gpte", 4, 1),
  quadrant: new BitField("quadrant", 5, 2),
  direct: new BitField("direct", 7, 1),
  access: new BitField("access", 8, 3),
  invalid: new BitField("invalid", 11, 1),
  efer_nx: new BitField("efer_nx", 12, 1),
  cr0_wp: new BitField("cr0_wp", 13, 1),
  smep_andnot_wp: new BitField("smep_andnot_wp", 14, 1),
  smap_andnot_wp: new BitField("smap_andnot_wp", 15, 1),
  ad_disabled: new BitField("ad_disabled", 16, 1),
  guest_mode: new BitField("guest_mode", 17, 1),
  passthrough: new BitField("passthrough", 18, 1),
  is_mirror: new BitField("is_mirror", 19, 1),
  smm: new BitField("smm", 24, 8),
} as const;

export const ACC_ALL = 7;

/** The role a TDP vCPU asks for: direct, ACC_ALL, cr0_wp, efer_nx, root level, address space. */
export function tdpRootRole(level: number, smm: number, mirror = false): number {
  let w = 0;
  w = ROLE.level.set(w, level);
  w = ROLE.direct.set(w, 1);
  w = ROLE.access.set(w, ACC_ALL);
  w = ROLE.cr0_wp.set(w, 1);
  w = ROLE.efer_nx.set(w, 1);
  w = ROLE.smm.set(w, smm);
  if (mirror) w = ROLE.is_mirror.set(w, 1);
  return w;
}

export function roleInvalid(word: number): boolean {
  return ROLE.invalid.get(word) === 1;
}

/** kvm_mmu_role_as_id(): address space 1 is SMM. */
export function roleAsId(word: number): number {
  return ROLE.smm.get(word) !== 0 ? 1 : 0;
}

export function describeRole(word: number): string {
  return `level=${ROLE.level.get(word)} smm=${ROLE.smm.get(word)}${ROLE.is_mirror.get(word) ? " mirror" : ""}${roleInvalid(word) ? " INVALID" : ""}`;
}
