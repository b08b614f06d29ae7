import { host } from "../../engine/host.js";
import { currentFn } from "../../engine/model-fn.js";
import { testBit } from "../../kernel/atomic.js";
import { pagesPerHpage } from "../kvm.js";
import {
  describeSpte,
  is_dirty_spte,
  is_large_pte,
  is_last_spte,
  is_shadow_present_pte,
  SPTE_BIT,
  spte_to_pfn,
} from "../spte.js";
import type { Kvm } from "../types.js";
import { page_checks_enabled } from "./pages.js";

/**
 * split-preserves-mapping: the page table that replaces a huge leaf (eager splitting, or a fault
 * splitting on its way down) maps exactly what the huge SPTE mapped. Splitting does not flush
 * (tdp_mmu_split_huge_page() relies on that), so vCPUs keep using the huge translation beside the new
 * ones; a child that maps another pfn, or grants more than the huge SPTE did, is a wrong translation
 * nobody will ever flush, and a child that dropped the huge SPTE's Dirty bit hides a guest write from
 * dirty logging (the flush decision after a split is made on the children).
 */

/** Permission bits a child may have only if the huge SPTE had them. */
const PERMISSIONS = [
  SPTE_BIT.readable,
  SPTE_BIT.writable,
  SPTE_BIT.executable,
  SPTE_BIT.hostWritable,
  SPTE_BIT.mmuWritable,
] as const;

/** What is wrong with child `index` of a split of `huge` (a leaf at child_level + 1), or null. */
export function split_child_problem(
  kvm: Kvm,
  huge: number,
  child_level: number,
  index: number,
  child: number,
): string | null {
  if (!is_shadow_present_pte(child)) return "is not present";
  if (!is_last_spte(child, child_level)) return "is not a leaf";
  if (child_level > 1 !== is_large_pte(child)) return "has the wrong page-size bit";
  const want = spte_to_pfn(huge) + index * pagesPerHpage(kvm.geometry, child_level);
  if (spte_to_pfn(child) !== want) return `maps pfn ${spte_to_pfn(child)} instead of ${want}`;
  for (const b of PERMISSIONS) {
    if (testBit(child, b) && !testBit(huge, b)) return `has permission bit ${b}, which the huge SPTE lacked`;
  }
  if (is_dirty_spte(huge) && !is_dirty_spte(child)) return "lost the huge SPTE's Dirty bit";
  return null;
}

/**
 * Called when a present huge leaf at `level` (the value the store really replaced) was replaced by a
 * pointer to the page table `children`: the table is checked as it was published.
 */
export function check_split_preserves_mapping(
  kvm: Kvm,
  sptep_name: string,
  level: number,
  huge: number,
  children: readonly { readonly v: number; readonly name: string }[],
): void {
  if (!page_checks_enabled(kvm)) return;
  for (let i = 0; i < children.length; i++) {
    const problem = split_child_problem(kvm, huge, level - 1, i, children[i].v);
    if (problem === null) continue;
    host().report({
      invariant: "split-preserves-mapping",
      message: `${currentFn()} replaced the huge ${sptep_name} (${describeSpte(huge, level)}) by a table whose ${children[i].name} (${describeSpte(children[i].v, level - 1)}) ${problem}`,
      details: { sptep: sptep_name, huge, index: i, child: children[i].v },
    });
    return;
  }
}
