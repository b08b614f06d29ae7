import { ROLE } from "../../src/mmu/role.js";

/**
 * A root's role word as its named fields (union kvm_mmu_page_role, the model's layout in
 * src/mmu/role.ts): multi-bit fields as name=value, set flags by name, clear flags left out.
 */
export function roleFields(word: number): string[] {
  const out: string[] = [];
  for (const f of Object.values(ROLE)) {
    const v = f.get(word);
    if (f.width === 1) {
      if (v) out.push(f.name);
    } else if (v !== 0 || f.name === "level") out.push(`${f.name}=${v}`);
  }
  return out;
}
