import { describe, expect, it } from "vitest";
import type { RunResult } from "../engine/runtime.js";
import { preempt_enable } from "../kernel/sched.js";
import { INV19 } from "./invariants/rmap.js";
import { __kvm_rmap_unlock, KVM_RMAP_MANY, type KvmRmapHead } from "./rmap.js";
import {
  lockSkipsEmptyRecheck,
  lockWithoutMmuLock,
  lockWithPlainStore,
  nonAtomicAgeClear,
  RMAP_MUTATIONS,
  readonlyLockPreemptible,
  unlockReadonlyStoresZero,
  writerSkipsRmapLock,
} from "./rmap_mutations.js";
import {
  addToSingle,
  dirtyVsAger,
  emptyRace,
  twoAgers,
  zapAll,
  zapOneFreesHeadDesc,
  zapThenRefill,
} from "./rmap_scenarios.js";
import { exploreAll, rmapProgram, searchSchedules } from "./rmap_testkit.js";

function messages(r: RunResult | undefined): string {
  return (r?.violations ?? []).map((v) => `${v.invariant}: ${v.message}`).join("\n");
}

describe("(a) read-only unlock stores the 0 it got back (seed 004)", () => {
  it("without CONFIG_KVM_PROVE_MMU the writer's first entry is silently lost", () => {
    const x = exploreAll(rmapProgram({ ...emptyRace, machine: { proveMmu: false } }), {
      overrides: unlockReadonlyStoresZero,
    });
    expect(x.complete).toBe(true);
    expect(x.firsts.get(INV19.lostEntry)).toBeGreaterThan(0);
    expect([...x.firsts.keys()]).toEqual([INV19.lostEntry]);
    expect(messages(x.examples.get(INV19.lostEntry))).toContain("spte0 was added to rmap0 and never removed");
  });

  it("CONFIG_KVM_PROVE_MMU's WARN catches it only when the add lands before the unlock's check", () => {
    const x = exploreAll(rmapProgram(emptyRace), { overrides: unlockReadonlyStoresZero });
    expect(x.complete).toBe(true);
    expect(new Set(x.firsts.keys())).toEqual(new Set(["WARN", INV19.lostEntry]));
    expect(messages(x.examples.get("WARN"))).toContain("KVM_MMU_WARN_ON(old_val != kvm_rmap_get(rmap_head))");
    // Check, then the writer's publish, then the store: no WARN, and the entry is gone.
    const silent = x.examples.get(INV19.lostEntry)!;
    expect(silent.violations[0].invariant).toBe(INV19.lostEntry);
  });

  it("the 6.15 no-op unlock is what saves the entry, not the WARN", () => {
    const x = exploreAll(rmapProgram({ ...emptyRace, machine: { proveMmu: false } }));
    expect(x.complete).toBe(true);
    expect([...x.counts.keys()]).toEqual([]);
  });
});

describe("(b) unlinking writers skip the rmap bit", () => {
  it("a desc is freed while the lockless ager holds the rmap bit", () => {
    const underBit = (r: RunResult) =>
      r.violations.some(
        (v) => v.invariant === INV19.descFreed && v.message.includes("while ager held the bit"),
      );
    const found = searchSchedules(rmapProgram(zapAll), underBit, { overrides: writerSkipsRmapLock });
    expect(messages(found.result!)).toMatch(/writer freed desc@\w+ of rmap0 while ager held the bit/);
  });

  for (const [name, s] of [
    ["kvm_zap_all_rmap_sptes", zapAll],
    ["pte_list_remove", zapOneFreesHeadDesc],
  ] as const) {
    it(`a lockless ager walks a desc ${name} freed (use-after-free)`, () => {
      const found = searchSchedules(
        rmapProgram(s),
        (r) =>
          r.violations.some((v) => v.invariant === "use-after-free" && v.details.kind === "pte_list_desc"),
        { overrides: writerSkipsRmapLock },
      );
      expect(found.result).not.toBeNull();
      const uaf = found.result!.violations.find((v) => v.invariant === "use-after-free")!;
      expect(uaf.taskName).toBe("ager");
      expect(uaf.message).toMatch(/ager in kvm_rmap_age_gfn_range did READ_ONCE on desc@\w+\.\w+/);
      expect(uaf.message).toContain(`freed by writer in ${name}`);
      // Before the reader trips over it, the checker has already named the broken rule.
      expect([INV19.unlockedWrite, INV19.descFreed]).toContain(found.result!.violations[0].invariant);
    });
  }

  it("is harmless without lockless readers: the same writers are the pre-6.15 protocol", () => {
    const x = exploreAll(rmapProgram({ ...zapAll, kernel: "v6.9" }), { overrides: writerSkipsRmapLock });
    expect([...x.counts.keys()]).toEqual([]);
  });
});

describe("(c) the lockless ager clears A non-atomically", () => {
  it("a Dirty bit the CPU sets in the window is lost", () => {
    const x = exploreAll(rmapProgram(dirtyVsAger), { overrides: nonAtomicAgeClear });
    expect(x.complete).toBe(true);
    expect([...x.firsts.keys()]).toEqual([INV19.lostDirty]);
    expect(messages(x.examples.get(INV19.lostDirty))).toContain(
      "the CPU set D in spte0, and it is now clear",
    );
  });

  it("is only a hazard without mmu_lock: before 6.15 the locked path is unchanged", () => {
    const x = exploreAll(rmapProgram({ ...dirtyVsAger, kernel: "v6.9" }), { overrides: nonAtomicAgeClear });
    expect([...x.counts.keys()]).toEqual([]);
  });
});

describe("(d) the writers' rmap lock taken without the write mmu_lock", () => {
  it("lockdep_assert_held_write(mmu_lock) in kvm_rmap_lock fires", () => {
    const x = exploreAll(rmapProgram(addToSingle), { overrides: lockWithoutMmuLock });
    expect([...x.firsts.keys()]).toEqual(["lockdep"]);
    expect(x.examples.get("lockdep")!.violations[0].message).toBe(
      "lockdep_assert_held_write(kvm.mmu_lock) failed in kvm_rmap_lock",
    );
  });
});

describe("(e) the read-only rmap lock with preemption enabled (B23 hazard 2)", () => {
  it("lockdep_assert_preemption_disabled() in __kvm_rmap_lock fires", () => {
    const x = exploreAll(rmapProgram(addToSingle), { overrides: readonlyLockPreemptible });
    expect([...x.firsts.keys()]).toEqual(["lockdep"]);
    expect(x.examples.get("lockdep")!.violations[0].message).toBe(
      "lockdep_assert_preemption_disabled() failed in __kvm_rmap_lock",
    );
  });
});

describe("(f) __kvm_rmap_lock without the re-check for an emptied rmap", () => {
  it("a reader that waited out a zap locks the now-empty rmap", () => {
    const x = exploreAll(rmapProgram(zapAll), { overrides: lockSkipsEmptyRecheck });
    expect([...x.firsts.keys()]).toEqual([INV19.emptyLocked]);
  });

  it("the bit then stays set for good and the next writer spins forever", () => {
    const found = searchSchedules(
      rmapProgram(zapThenRefill),
      (r) => r.violations.some((v) => v.invariant === "deadlock"),
      {
        overrides: lockSkipsEmptyRecheck,
      },
    );
    expect(found.result).not.toBeNull();
    expect(messages(found.result!)).toMatch(
      /writer waits in __kvm_rmap_lock \(cpu_relax\(\) while KVM_RMAP_LOCKED\)/,
    );
  });

  it("with the re-check, zap-then-refill is clean over all schedules", () => {
    const x = exploreAll(rmapProgram(zapThenRefill));
    expect(x.complete).toBe(true);
    expect([...x.counts.keys()]).toEqual([]);
  });
});

describe("(g) the bit set with a plain store", () => {
  it("two lockless agers both take the rmap", () => {
    const x = exploreAll(rmapProgram(twoAgers), { overrides: lockWithPlainStore });
    expect(x.complete).toBe(true);
    expect([...x.firsts.keys()]).toEqual([INV19.mutex]);
    expect(messages(x.examples.get(INV19.mutex))).toMatch(/ager2? locked rmap0 while ager2? held it/);
  });
});

describe("read-only lockers restore what they locked", () => {
  it("an unlock that stores anything else is reported", () => {
    const clobber = new Map<string, Function>([
      [
        "kvm_rmap_unlock_readonly",
        function* (_orig: unknown, head: KvmRmapHead, old: number) {
          if (old === 0) return;
          yield* __kvm_rmap_unlock(head, old & ~KVM_RMAP_MANY);
          preempt_enable();
        },
      ],
    ]);
    const x = exploreAll(rmapProgram(twoAgers), { overrides: clobber, stopOnViolation: false });
    // Every run: the damage (the chain lost its entries) and the rule that caused it.
    expect(x.counts.get(INV19.lostEntry)).toBe(x.executions);
    expect(x.counts.get(INV19.readonlyRestore)).toBe(x.executions);
  });
});

describe("mutation catalogue", () => {
  it("lists every mutation once", () => {
    expect(RMAP_MUTATIONS.map((m) => `${m.tag}:${m.name}`)).toEqual([
      "a:unlockReadonlyStoresZero",
      "b:writerSkipsRmapLock",
      "c:nonAtomicAgeClear",
      "d:lockWithoutMmuLock",
      "e:readonlyLockPreemptible",
      "f:lockSkipsEmptyRecheck",
      "g:lockWithPlainStore",
    ]);
  });

  for (const m of RMAP_MUTATIONS) {
    it(`(${m.tag}) ${m.name}: its scenario reaches ${m.consequence}, first breaking ${m.first.join(" or ")}`, () => {
      const found = searchSchedules(
        rmapProgram(m.scenario),
        (r) => r.violations.some((v) => v.invariant === m.consequence),
        {
          overrides: m.overrides,
        },
      );
      expect(found.result).not.toBeNull();
      expect(m.first).toContain(found.result!.violations[0].invariant);
      // And the unmutated model runs the same scenario clean.
      const clean = exploreAll(rmapProgram(m.scenario));
      expect(clean.complete).toBe(true);
      expect([...clean.counts.keys()]).toEqual([]);
    });
  }
});
