import { describe, expect, it } from "vitest";
import * as api from "./index.js";
import { modelFnNames } from "./mmu/model-fns.js";

describe('the public API (import … from "tdplab")', () => {
  it("exports every model function a variant may override or call", () => {
    const exported = new Set<string>();
    for (const v of Object.values(api)) {
      const name = (v as { kernelName?: unknown }).kernelName;
      if (typeof v === "function" && typeof name === "string") exported.add(name);
    }
    expect(modelFnNames().length).toBeGreaterThan(60);
    expect(modelFnNames().filter((n) => !exported.has(n))).toEqual([]);
  });

  it("exports the helpers variant authors reached into dist/ for", () => {
    for (const n of [
      "kvm_flush_remote_tlbs",
      "kvm_flush_remote_tlbs_range",
      "kvm_tdp_mmu_zap_leafs",
      "zap_gfn_range",
      "kvm_mmu_invalidate_begin",
      "kvm_mmu_invalidate_range_add",
      "kvm_mmu_invalidate_end",
      "mmu_invalidate_retry_gfn",
      "register_page_table_checks",
      "kvm_mmu_notifier_release",
      "kvm_get_kvm_at_spawn",
      "kvm_put_kvm",
      "handle_changed_spte",
      "check_yield_progress",
      "mmu_free_root_page",
      "defineVariant",
      "defineScenario",
    ]) {
      expect(typeof (api as Record<string, unknown>)[n], n).toBe("function");
    }
  });
});
