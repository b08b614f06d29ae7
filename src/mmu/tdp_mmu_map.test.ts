import { describe, expect, it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import type { Gen } from "../engine/op.js";
import type { Program, RunResult } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { bitfield_store, WRITE_ONCE } from "../kernel/atomic.js";
import { type Machine, machine } from "../kernel/machine.js";
import { read_lock, read_unlock, write_lock, write_unlock } from "../kernel/rwlock.js";
import { hostState } from "./host_mm.js";
import { defaultHostPfn } from "./kvm.js";
import { ROLE } from "./role.js";
import { is_writable_pte } from "./spte.js";
import {
  KVM_MEM_LOG_DIRTY_PAGES,
  type KvmPageFault,
  kvm_tdp_mmu_map,
  kvm_tdp_mmu_page_fault,
  type RetPf,
} from "./tdp_mmu_map.js";
import {
  exploreSleepSets,
  makeRoot,
  makeVcpu,
  makeVm,
  peekLeaf,
  peekLeaves,
  populate,
  type TestVmOptions,
  tablePages,
} from "./testing.js";
import type { Kvm, KvmMmuPage, Vcpu } from "./types.js";

interface World {
  m: Machine;
  kvm: Kvm;
  root: KvmMmuPage;
  vcpus: Vcpu[];
  rets: RetPf[];
}

/** A program with one VM, one root and n vCPUs each running `body`. */
function world(o: TestVmOptions, n: number, body: (w: World, v: Vcpu, i: number) => Gen<void>) {
  const out: { w: World | null } = { w: null };
  const program: Program = ({ spawn }) => {
    const kvm = makeVm(o);
    const root = makeRoot(kvm, n);
    const w: World = { m: machine(), kvm, root, vcpus: [], rets: [] };
    for (let i = 0; i < n; i++) w.vcpus.push(makeVcpu(kvm, root));
    out.w = w;
    w.vcpus.forEach((v, i) => {
      spawn(`vcpu${i}`, body(w, v, i));
    });
  };
  return { program, out };
}

function runOnce(program: Program): RunResult {
  return runProgram(program, { scheduler: new RoundRobinScheduler() });
}

function fault(o: TestVmOptions, gfn: number, maxLevel?: number) {
  const { program, out } = world(o, 1, function* (w, v) {
    w.rets.push(yield* kvm_tdp_mmu_page_fault(v, gfn, true, { maxLevel }));
  });
  const r = runOnce(program);
  return { r, w: out.w! };
}

describe("kvm_tdp_mmu_page_fault", () => {
  it("maps a 4K page through a new table at every level", () => {
    const { r, w } = fault({ ptes: 2 }, 5, 1);
    expect(r.violations).toEqual([]);
    expect(w.rets).toEqual(["RET_PF_FIXED"]);
    const leaf = peekLeaf(w.kvm, w.root, 5)!;
    expect(leaf.level).toBe(1);
    expect(leaf.pfn).toBe(defaultHostPfn(5));
    expect(is_writable_pte(leaf.spte)).toBe(true);
    expect(tablePages(w.kvm)).toHaveLength(3);
    expect(w.kvm.tdp_mmu_pages.v).toBe(3);
    expect(peekLeaves(w.kvm, w.root)).toHaveLength(1);
  });

  it("maps a huge page when the slot and the host mapping allow it", () => {
    const { w } = fault({ ptes: 2 }, 5);
    const leaf = peekLeaf(w.kvm, w.root, 5)!;
    expect(leaf.level).toBe(3);
    // The huge leaf maps its whole 1G region: pfn aligned down to the region's base.
    expect(leaf.pfn).toBe(defaultHostPfn(4));
    expect(tablePages(w.kvm)).toHaveLength(1);
  });

  it("falls back to 4K when the host pfn is not aligned or dirty logging is on", () => {
    // 3 entries per table: 0x10000 is not a multiple of 3 or 9.
    expect(peekLeaf(fault({ ptes: 3 }, 5).w.kvm, fault({ ptes: 3 }, 5).w.root, 5)?.level).toBe(1);
    const { program, out } = world({ ptes: 2 }, 1, function* (w, v) {
      w.kvm.memslots[0].flags = KVM_MEM_LOG_DIRTY_PAGES;
      w.rets.push(yield* kvm_tdp_mmu_page_fault(v, 5, true));
    });
    runOnce(program);
    expect(peekLeaf(out.w!.kvm, out.w!.root, 5)?.level).toBe(1);
  });

  it("maps a huge page only inside the memslot", () => {
    // 2 entries per table: a level-2 leaf maps 2 frames, a level-3 leaf 4.
    const { w } = fault({ ptes: 2, memslotPages: 5 }, 4);
    expect(peekLeaf(w.kvm, w.root, 4)?.level).toBe(1);
    const { w: w1 } = fault({ ptes: 2, memslotPages: 6 }, 5);
    expect(peekLeaf(w1.kvm, w1.root, 5)?.level).toBe(2);
    const { w: w2 } = fault({ ptes: 2, memslotPages: 6 }, 1);
    expect(peekLeaf(w2.kvm, w2.root, 1)?.level).toBe(3);
  });

  it("retries when an invalidation covering the gfn is in progress, not otherwise", () => {
    for (const [start, end, want] of [
      [4, 6, "RET_PF_RETRY"],
      [6, 8, "RET_PF_FIXED"],
    ] as const) {
      const { program, out } = world({ ptes: 2 }, 1, function* (w, v) {
        w.kvm.mmu_invalidate_in_progress.v = 1;
        w.kvm.mmu_invalidate_range_start.v = start;
        w.kvm.mmu_invalidate_range_end.v = end;
        w.rets.push(yield* kvm_tdp_mmu_page_fault(v, 5, true, { maxLevel: 1 }));
      });
      expect(runOnce(program).violations).toEqual([]);
      expect(out.w!.rets).toEqual([want]);
      expect(peekLeaf(out.w!.kvm, out.w!.root, 5) !== null).toBe(want === "RET_PF_FIXED");
    }
  });

  it("retries when mmu_invalidate_seq moves between the snapshot and the recheck", () => {
    const outcomes = new Set<string>();
    let w: World | null = null;
    const program: Program = ({ spawn }) => {
      const kvm = makeVm({ ptes: 2 });
      const root = makeRoot(kvm, 1);
      const v = makeVcpu(kvm, root);
      const ww: World = { m: machine(), kvm, root, vcpus: [v], rets: [] };
      w = ww;
      spawn(
        "vcpu0",
        (function* () {
          ww.rets.push(yield* kvm_tdp_mmu_page_fault(v, 5, true, { maxLevel: 1 }));
        })(),
      );
      spawn(
        "notifier",
        (function* () {
          yield* write_lock(kvm.mmu_lock);
          yield* WRITE_ONCE(kvm.mmu_invalidate_seq, 1);
          yield* write_unlock(kvm.mmu_lock);
        })(),
      );
    };
    const res = exploreSleepSets(program, {}, (r) => {
      expect(r.violations).toEqual([]);
      const ww = w!;
      const mapped = peekLeaf(ww.kvm, ww.root, 5) !== null;
      expect(mapped).toBe(ww.rets[0] === "RET_PF_FIXED");
      outcomes.add(ww.rets[0]);
    });
    expect(res.complete).toBe(true);
    expect([...outcomes].sort()).toEqual(["RET_PF_FIXED", "RET_PF_RETRY"]);
  });

  it("does not map into a root that was invalidated after it was loaded (a955cad84cda)", () => {
    for (const faultChecksInvalidRoot of [true, false]) {
      const program: Program = ({ spawn }) => {
        const kvm = makeVm({ ptes: 2, features: { faultChecksInvalidRoot } });
        const root = makeRoot(kvm, 1);
        const v = makeVcpu(kvm, root);
        spawn(
          "vcpu0",
          (function* () {
            yield* kvm_tdp_mmu_page_fault(v, 5, true, { maxLevel: 3 });
          })(),
        );
        spawn(
          "invalidate",
          (function* () {
            yield* write_lock(kvm.mmu_lock);
            yield* bitfield_store(root.role, ROLE.invalid, 1);
            yield* write_unlock(kvm.mmu_lock);
          })(),
        );
      };
      const res = exploreSleepSets(program, { stopOnFirst: true });
      if (faultChecksInvalidRoot) {
        expect(res.firstViolation).toBeNull();
        expect(res.complete).toBe(true);
      } else {
        expect(res.firstViolation?.violations[0].invariant).toBe("inv9-no-new-spte-in-invalid-root");
      }
    }
  });
});

describe("huge page split on the fault path", () => {
  it("splits a 1G leaf down to the 4K goal, keeping every frame's translation", () => {
    let w: World | null = null;
    const program: Program = ({ spawn }) => {
      const kvm = makeVm({ ptes: 2 });
      const root = makeRoot(kvm, 1);
      populate(kvm, root, 8, 3);
      const v = makeVcpu(kvm, root);
      const ww: World = { m: machine(), kvm, root, vcpus: [v], rets: [] };
      w = ww;
      spawn(
        "vcpu0",
        (function* () {
          ww.rets.push(yield* kvm_tdp_mmu_page_fault(v, 9, true, { maxLevel: 1 }));
        })(),
      );
    };
    expect(runOnce(program).violations).toEqual([]);
    const { kvm, root, rets } = w!;
    // The split pieces already say what the fault would install: nothing left to do.
    expect(rets).toEqual(["RET_PF_SPURIOUS"]);
    expect(peekLeaves(kvm, root).map(([g, l]) => [g, l])).toEqual([
      [8, 1],
      [9, 1],
      [10, 2],
    ]);
    for (const g of [8, 9, 10, 11])
      expect(peekLeaf(kvm, root, g)!.pfn).toBe(defaultHostPfn(g - (g === 11 ? 1 : 0)));
    expect(tablePages(kvm)).toHaveLength(3);
    expect(kvm.tdp_mmu_pages.v).toBe(3);
  });
});

describe("concurrent faults", () => {
  /** Two vCPUs map the same gfn under the read lock. */
  function twoMaps(goal_level: number, whole: boolean) {
    const { program, out } = world({ ptes: 2 }, 2, function* (w, v) {
      if (whole) {
        w.rets.push(yield* kvm_tdp_mmu_page_fault(v, 5, true, { maxLevel: goal_level }));
        return;
      }
      const f: KvmPageFault = {
        gfn: 5,
        write: true,
        exec: false,
        prefetch: false,
        slot: w.kvm.memslots[0],
        max_level: goal_level,
        req_level: goal_level,
        goal_level,
        pfn: defaultHostPfn(4),
        map_writable: true,
        mmu_seq: 0,
        huge_page_disallowed: false,
        nx_huge_page_workaround_enabled: false,
      };
      yield* read_lock(w.kvm.mmu_lock);
      w.rets.push(yield* kvm_tdp_mmu_map(v, f));
      yield* read_unlock(w.kvm.mmu_lock);
    });
    // Plain comparisons (tens of thousands of runs): the first failure is kept and asserted once.
    const problems: string[] = [];
    const check = (r: RunResult) => {
      const w = out.w!;
      const tables = 4 - goal_level;
      const live = [...w.m.live].filter((o) => o.kind === "tdp_page").length;
      const fixed = w.rets.filter((x) => x === "RET_PF_FIXED").length;
      if (
        r.violations.length !== 0 ||
        peekLeaves(w.kvm, w.root).length !== 1 ||
        tablePages(w.kvm).length !== tables ||
        live !== tables ||
        w.kvm.tdp_mmu_pages.v !== tables ||
        fixed < 1
      ) {
        if (problems.length === 0) {
          problems.push(JSON.stringify({ v: r.violations, rets: w.rets, live, choices: r.choices }));
        }
      }
      return w.rets.join(",");
    };
    return { program, check, problems };
  }

  it("every schedule of two kvm_tdp_mmu_map on one gfn: one leaf, no leak (enumerateAll)", () => {
    const { program, check, problems } = twoMaps(3, false);
    const seen = new Set<string>();
    const res = enumerateAll(program, {}, (r) => seen.add(check(r)));
    expect(res.complete).toBe(true);
    // Both outcomes of the race happen: one vCPU loses and retries, or both find the work done.
    expect([...seen]).toContain("RET_PF_FIXED,RET_PF_RETRY");
    const reduced = new Set<string>();
    const red = exploreSleepSets(program, {}, (r) => reduced.add(check(r)));
    expect(red.complete).toBe(true);
    expect(red.executions).toBeLessThan(res.executions);
    expect([...reduced].sort()).toEqual([...seen].sort());
    expect(problems).toEqual([]);
  });

  it("two full 4K page faults on one gfn: one leaf, no leak, no violation (sleep sets)", () => {
    const { program, check, problems } = twoMaps(1, true);
    const res = exploreSleepSets(program, {}, check);
    expect(res.complete).toBe(true);
    expect(problems).toEqual([]);
    expect(res.executions).toBeGreaterThan(10);
  });
});

describe("the fault's memslot lookup", () => {
  // kvm_vcpu_gfn_to_memslot() reads the memslot array; where a task can replace it (a memslot
  // update), the lookup is an access of that array, so the explorers order it against the update.
  const faultSteps = (withUpdater: boolean) => {
    let memslots = -1;
    const program: Program = ({ spawn }) => {
      const kvm = makeVm({ ptes: 2, memslotPages: 4, machine: { needResched: "never" } });
      const vcpu = makeVcpu(kvm, makeRoot(kvm, 1));
      if (withUpdater) memslots = hostState(kvm).memslots.id;
      spawn("vcpu", kvm_tdp_mmu_page_fault(vcpu, 0, true) as Gen<unknown> as Gen<void>);
    };
    const r = runProgram(program, { scheduler: new RoundRobinScheduler(), record: true });
    expect(r.violations).toEqual([]);
    return r.trace!.filter((s) => s.fn === "kvm_tdp_mmu_page_fault" && s.obj === memslots).length;
  };

  it("is a read of the memslot array when something can change it, and free otherwise", () => {
    expect(faultSteps(true)).toBe(1);
    expect(faultSteps(false)).toBe(0);
  });
});
