import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import { type RunResult, runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { write_lock, write_unlock } from "../kernel/rwlock.js";
import {
  KVM_RMAP_LOCKED,
  KVM_RMAP_MANY,
  kvm_age_gfn,
  kvm_rmap_lock_readonly,
  kvm_rmap_unlock_readonly,
  kvm_test_age_gfn,
  kvm_zap_all_rmap_sptes,
  kvm_zap_one_rmap_spte,
  peekChain,
  pte_list_add,
  pte_list_count,
  pte_list_remove,
  spteIsYoung,
} from "./rmap.js";
import { leafFor, type RmapScenario, type RmapWorld, rmapProgram } from "./rmap_testkit.js";
import { is_accessed_spte, is_dirty_spte, is_shadow_present_pte } from "./spte.js";

/** Run one task alone; the returned world can be inspected after the run. */
function runSeq(
  s: Omit<RmapScenario, "tasks">,
  body: (w: RmapWorld) => Gen<void>,
): { r: RunResult; w: RmapWorld } {
  let world: RmapWorld | undefined;
  const r = runProgram(
    rmapProgram({
      ...s,
      onWorld: (w) => {
        world = w;
      },
      tasks: [{ name: "t", body }],
    }),
    { scheduler: new RoundRobinScheduler(), stopOnViolation: false },
  );
  return { r, w: world! };
}

function names(w: RmapWorld, head = 0): string[] {
  return peekChain(w.heads[head]).sptes.map((p) => w.ctx.describePtr(p));
}

function invariants(r: RunResult): string[] {
  return r.violations.map((v) => v.invariant);
}

describe("rmap chain shapes (pte_list_add / pte_list_remove, 6.15)", () => {
  it("one entry is the SPTE pointer itself, two make a desc", () => {
    let afterOne = 0;
    let afterTwo = 0;
    const { r, w } = runSeq({ sptes: 2, initial: [[0]] }, function* (w) {
      afterOne = w.heads[0].val.v;
      yield* write_lock(w.kvm.mmu_lock);
      const before = yield* pte_list_add(w.kvm, w.cache(), w.sptes[1], w.heads[0]);
      expect(before).toBe(1);
      yield* write_unlock(w.kvm.mmu_lock);
      afterTwo = w.heads[0].val.v;
    });
    expect(r.violations).toEqual([]);
    expect(afterOne).toBe(w.ctx.sptePtr(w.sptes[0]));
    expect(afterTwo & KVM_RMAP_MANY).toBe(KVM_RMAP_MANY);
    expect(afterTwo & KVM_RMAP_LOCKED).toBe(0);
    expect(names(w)).toEqual(["spte0", "spte1"]);
  });

  it("many entries form a chain: a partly full head desc in front of full tail descs", () => {
    const { r, w } = runSeq({ sptes: 7, pteListExt: 3, initial: [[0, 1, 2, 3, 4, 5, 6]] }, function* () {});
    expect(r.violations).toEqual([]);
    const c = peekChain(w.heads[0]);
    // 7 = 1 (head desc) + 3 + 3 (tails): newest desc first.
    expect(c.descs.map((d) => d.spte_count.v)).toEqual([1, 3, 3]);
    expect(c.descs.map((d) => d.tail_count.v)).toEqual([6, 3, 0]);
    expect(names(w)).toEqual(["spte6", "spte3", "spte4", "spte5", "spte0", "spte1", "spte2"]);
  });

  it("pte_list_count counts head and tail descs", () => {
    let n = -1;
    const { r } = runSeq({ sptes: 5, initial: [[0, 1, 2, 3, 4]] }, function* (w) {
      n = yield* pte_list_count(w.heads[0]);
    });
    expect(r.violations).toEqual([]);
    expect(n).toBe(5);
  });

  it("removal compacts: the head desc's last entry fills the hole, an emptied head desc is freed", () => {
    let freedAfterFirst: string[] = [];
    const { r, w } = runSeq({ sptes: 4, pteListExt: 3, initial: [[0, 1, 2, 3]] }, function* (w) {
      yield* write_lock(w.kvm.mmu_lock);
      // Chain: [spte3] -> [spte0 spte1 spte2]. Removing spte1 moves spte3 into its slot.
      yield* pte_list_remove(w.kvm, w.sptes[1], w.heads[0]);
      freedAfterFirst = [...w.ctx.descs.values()]
        .filter((d) => d.kobj.freed !== null)
        .map((d) => d.kobj.name);
      yield* pte_list_remove(w.kvm, w.sptes[0], w.heads[0]);
      yield* write_unlock(w.kvm.mmu_lock);
    });
    expect(r.violations).toEqual([]);
    expect(freedAfterFirst.length).toBe(1);
    // Then removing spte0 moves the head desc's last entry (spte2) into slot 0.
    const c = peekChain(w.heads[0]);
    expect(c.descs.length).toBe(1);
    expect(c.descs[0].tail_count.v).toBe(0);
    expect(names(w)).toEqual(["spte2", "spte3"]);
  });

  it("removing down to one entry keeps a one-entry desc; removing the last empties the head", () => {
    const { r, w } = runSeq({ sptes: 2, initial: [[0, 1]] }, function* (w) {
      yield* write_lock(w.kvm.mmu_lock);
      yield* pte_list_remove(w.kvm, w.sptes[0], w.heads[0]);
      expect(names(w)).toEqual(["spte1"]);
      expect(w.heads[0].val.v & KVM_RMAP_MANY).toBe(KVM_RMAP_MANY);
      yield* pte_list_remove(w.kvm, w.sptes[1], w.heads[0]);
      yield* write_unlock(w.kvm.mmu_lock);
    });
    expect(r.violations).toEqual([]);
    expect(w.heads[0].val.v).toBe(0);
    expect([...w.ctx.descs.values()].every((d) => d.kobj.freed !== null)).toBe(true);
  });

  it("a desc from an empty memory cache WARNs (the caller should have topped it up)", () => {
    const { r, w } = runSeq({ sptes: 2, initial: [[0]] }, function* (w) {
      yield* write_lock(w.kvm.mmu_lock);
      yield* pte_list_add(w.kvm, { name: "empty", nobjs: 0 }, w.sptes[1], w.heads[0]);
      yield* write_unlock(w.kvm.mmu_lock);
    });
    expect(r.violations.map((v) => v.message)).toEqual(["WARN_ON_ONCE(!mc->nobjs) in pte_list_add"]);
    expect(names(w)).toEqual(["spte0", "spte1"]);
  });

  it("removing an SPTE that is not in the rmap is data corruption (KVM_BUG_ON)", () => {
    const { r } = runSeq({ sptes: 3, initial: [[0, 1]] }, function* (w) {
      yield* write_lock(w.kvm.mmu_lock);
      yield* pte_list_remove(w.kvm, w.sptes[2], w.heads[0]);
      yield* write_unlock(w.kvm.mmu_lock);
    });
    expect(invariants(r)).toContain("KVM_BUG_ON");
  });

  it("kvm_zap_one_rmap_spte clears the SPTE, then unlinks it", () => {
    const { r, w } = runSeq({ sptes: 3, initial: [[0, 1, 2]] }, function* (w) {
      yield* write_lock(w.kvm.mmu_lock);
      yield* kvm_zap_one_rmap_spte(w.kvm, w.heads[0], w.sptes[1]);
      yield* write_unlock(w.kvm.mmu_lock);
    });
    expect(r.violations).toEqual([]);
    expect(is_shadow_present_pte(w.sptes[1].v)).toBe(false);
    expect(names(w).sort()).toEqual(["spte0", "spte2"]);
  });

  it("kvm_zap_all_rmap_sptes clears every SPTE, frees every desc, empties the head", () => {
    const zapped: boolean[] = [];
    const { r, w } = runSeq({ sptes: 5, heads: 2, initial: [[0, 1, 2, 3, 4], []] }, function* (w) {
      yield* write_lock(w.kvm.mmu_lock);
      zapped.push(yield* kvm_zap_all_rmap_sptes(w.kvm, w.heads[0]));
      zapped.push(yield* kvm_zap_all_rmap_sptes(w.kvm, w.heads[1]));
      yield* write_unlock(w.kvm.mmu_lock);
    });
    expect(r.violations).toEqual([]);
    expect(zapped).toEqual([true, false]);
    expect(w.heads[0].val.v).toBe(0);
    expect(w.sptes.every((s) => !is_shadow_present_pte(s.v))).toBe(true);
    expect([...w.ctx.descs.values()].every((d) => d.kobj.freed !== null)).toBe(true);
  });
});

describe("rmap lock (4834eaded91e)", () => {
  it("read-only lock of an empty rmap locks nothing, re-enables preemption, and the unlock is a no-op", () => {
    let got = -1;
    const { r, w } = runSeq({ sptes: 1 }, function* (w) {
      got = yield* kvm_rmap_lock_readonly(w.heads[0]);
      yield* kvm_rmap_unlock_readonly(w.heads[0], got);
    });
    expect(r.violations).toEqual([]);
    expect(got).toBe(0);
    expect(w.heads[0].val.v).toBe(0);
  });

  it("read-only lock sets the bit and returns the word without it; unlock restores it", () => {
    let got = -1;
    let during = -1;
    const { r, w } = runSeq({ sptes: 2, initial: [[0, 1]] }, function* (w) {
      got = yield* kvm_rmap_lock_readonly(w.heads[0]);
      during = w.heads[0].val.v;
      yield* kvm_rmap_unlock_readonly(w.heads[0], got);
    });
    expect(r.violations).toEqual([]);
    expect(during).toBe(got | KVM_RMAP_LOCKED);
    expect(w.heads[0].val.v).toBe(got);
  });

  it("writers must hold mmu_lock for write (the seed-004 TODO as an assertion)", () => {
    const { r } = runSeq({ sptes: 1 }, function* (w) {
      yield* pte_list_add(w.kvm, w.cache(), w.sptes[0], w.heads[0]);
    });
    expect(r.violations.map((v) => v.message).join("\n")).toContain(
      "lockdep_assert_held_write(kvm.mmu_lock) failed in kvm_rmap_lock",
    );
  });

  it("before 6.15 writers need no bit and no assertion beyond their callers' lock", () => {
    const { r, w } = runSeq({ kernel: "v6.9", sptes: 3, initial: [[0, 1, 2]] }, function* (w) {
      yield* write_lock(w.kvm.mmu_lock);
      yield* pte_list_remove(w.kvm, w.sptes[0], w.heads[0]);
      yield* write_unlock(w.kvm.mmu_lock);
    });
    expect(r.violations).toEqual([]);
    expect(names(w).sort()).toEqual(["spte1", "spte2"]);
  });
});

describe("aging walks", () => {
  it("lockless aging (6.15) clears A on every present SPTE and reports young once", () => {
    const young: boolean[] = [];
    const { r, w } = runSeq({ sptes: 4, initial: [[0, 1, 2, 3]] }, function* (w) {
      young.push(yield* kvm_test_age_gfn(w.kvm, w.heads));
      young.push(yield* kvm_age_gfn(w.kvm, w.heads));
      young.push(yield* kvm_test_age_gfn(w.kvm, w.heads));
      young.push(yield* kvm_age_gfn(w.kvm, w.heads));
    });
    expect(r.violations).toEqual([]);
    expect(young).toEqual([true, true, false, false]);
    expect(w.sptes.every((s) => is_shadow_present_pte(s.v) && !is_accessed_spte(s.v))).toBe(true);
  });

  it("the lockless walk skips SPTEs zapped but still linked", () => {
    const young: boolean[] = [];
    const { r } = runSeq({ sptes: 2, initial: [[0, 1]] }, function* (w) {
      // What kvm_zap_one_rmap_spte leaves for a moment: the SPTE cleared, the chain untouched.
      w.sptes[0].v = 0;
      young.push(yield* kvm_age_gfn(w.kvm, w.heads));
      w.sptes[1].v = 0;
      young.push(yield* kvm_test_age_gfn(w.kvm, w.heads));
    });
    expect(young).toEqual([true, false]);
    expect(invariants(r)).not.toContain("WARN");
  });

  it("without A/D bits, aging marks the SPTE for access tracking (present, RWX clear, R/X saved)", () => {
    const { r, w } = runSeq({ sptes: 1, initial: [[0]], adDisabled: [0] }, function* (w) {
      expect(yield* kvm_age_gfn(w.kvm, w.heads)).toBe(true);
      expect(yield* kvm_test_age_gfn(w.kvm, w.heads)).toBe(false);
    });
    expect(r.violations).toEqual([]);
    const v = w.sptes[0].v;
    expect(is_shadow_present_pte(v)).toBe(true);
    expect(spteIsYoung(v)).toBe(false);
    expect(v & 0b111).toBe(0);
    expect(v & 0b101000).toBe(0b101000);
  });

  it("before 6.15 (locked aging) the ager takes the write mmu_lock and gets the same result", () => {
    const young: boolean[] = [];
    const { r, w } = runSeq(
      { kernel: "v6.9", sptes: 3, initial: [[0, 1, 2]], adDisabled: [2] },
      function* (w) {
        young.push(yield* kvm_age_gfn(w.kvm, w.heads));
        young.push(yield* kvm_test_age_gfn(w.kvm, w.heads));
      },
    );
    expect(r.violations).toEqual([]);
    expect(young).toEqual([true, false]);
    expect(w.sptes.every((s) => !spteIsYoung(s.v))).toBe(true);
  });

  it("the locked walk WARNs on a non-present SPTE in the chain (it was a BUG before 6.15)", () => {
    const { r } = runSeq({ kernel: "v6.9", sptes: 2, initial: [[0, 1]] }, function* (w) {
      w.sptes[0].v = 0;
      yield* kvm_age_gfn(w.kvm, w.heads);
    });
    expect(r.violations.map((v) => v.message).join("\n")).toContain("!is_shadow_present_pte(*sptep)");
  });

  it("leaves the D bit alone", () => {
    const { w } = runSeq({ sptes: 1, initial: [[0]] }, function* (w) {
      w.sptes[0].v = leafFor(0) + 2 ** 9;
      yield* kvm_age_gfn(w.kvm, w.heads);
    });
    expect(is_dirty_spte(w.sptes[0].v)).toBe(true);
    expect(is_accessed_spte(w.sptes[0].v)).toBe(false);
  });
});
