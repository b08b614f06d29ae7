import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import type { Program, RunResult } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { bitfield_store } from "../kernel/atomic.js";
import type { MachineConfig } from "../kernel/machine.js";
import { type Machine, machine } from "../kernel/machine.js";
import { read_lock, read_unlock, write_lock, write_unlock } from "../kernel/rwlock.js";
import { ROLE } from "./role.js";
import { kvm_tdp_mmu_page_fault, type RetPf } from "./tdp_mmu_map.js";
import { tdp_mmu_free_sp } from "./tdp_mmu_spte.js";
import { type tdp_mmu_iter_cond_resched, tdp_mmu_zap_leafs, tdp_mmu_zap_root } from "./tdp_mmu_zap.js";
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
import { kvm_flush_remote_tlbs } from "./tlb.js";
import type { Kvm, KvmMmuPage } from "./types.js";

interface W {
  m: Machine;
  kvm: Kvm;
  root: KvmMmuPage;
  out: unknown[];
}

/** One VM with one root (refcount 1), populated by `fill`, and one task per body. */
function prog(
  o: TestVmOptions,
  fill: (kvm: Kvm, root: KvmMmuPage) => void,
  bodies: ((w: W) => Gen<void>)[],
): { program: Program; w: () => W } {
  let cur: W | null = null;
  const program: Program = ({ spawn }) => {
    const kvm = makeVm(o);
    const root = makeRoot(kvm, 1);
    fill(kvm, root);
    const w: W = { m: machine(), kvm, root, out: [] };
    cur = w;
    bodies.forEach((b, i) => {
      spawn(`t${i}`, b(w));
    });
  };
  return { program, w: () => cur! };
}

function run(program: Program, overrides?: ReadonlyMap<string, Function>): RunResult {
  return runProgram(program, { scheduler: new RoundRobinScheduler(), overrides });
}

/** Every gfn mapped 4K: with 2 entries per table and 4 levels, 14 page tables. */
function fillAll(kvm: Kvm, root: KvmMmuPage): void {
  for (let g = 0; g < kvm.geometry.maxGfn; g++) populate(kvm, root, g, 1);
}

const quiet: Partial<MachineConfig> = { needResched: "never", preemption: "none" };

describe("tdp_mmu_zap_leafs", () => {
  it("removes exactly the leaves of its range and reports the flush it owes", () => {
    const { program, w } = prog(
      { ptes: 2, machine: quiet },
      (kvm, root) => {
        fillAll(kvm, root);
      },
      [
        function* (w) {
          yield* write_lock(w.kvm.mmu_lock);
          const flush = yield* tdp_mmu_zap_leafs(w.kvm, w.root, 5, 11, false, false);
          w.out.push(flush);
          if (flush) yield* kvm_flush(w);
          yield* write_unlock(w.kvm.mmu_lock);
        },
      ],
    );
    expect(run(program).violations).toEqual([]);
    const { kvm, root, out } = w();
    expect(out).toEqual([true]);
    for (let g = 0; g < 16; g++) expect(peekLeaf(kvm, root, g) === null).toBe(g >= 5 && g < 11);
    // Leaf zaps free no table.
    expect(tablePages(kvm)).toHaveLength(14);
  });

  it("zaps a huge leaf that overlaps the range", () => {
    const { program, w } = prog(
      { ptes: 2, machine: quiet },
      (kvm, root) => {
        populate(kvm, root, 4, 3);
        populate(kvm, root, 8, 1);
      },
      [
        function* (w) {
          yield* write_lock(w.kvm.mmu_lock);
          if (yield* tdp_mmu_zap_leafs(w.kvm, w.root, 7, 9, false, false)) yield* kvm_flush(w);
          yield* write_unlock(w.kvm.mmu_lock);
        },
      ],
    );
    expect(run(program).violations).toEqual([]);
    expect(peekLeaves(w().kvm, w().root)).toEqual([]);
  });

  it("owes no flush for an invalid root from 6.9 (99b85fda91b1), and did before", () => {
    for (const [kernel, want] of [
      ["v6.9", false],
      ["v6.6", true],
    ] as const) {
      const { program, w } = prog({ ptes: 2, kernel, machine: quiet }, fillAll, [
        function* (w) {
          yield* write_lock(w.kvm.mmu_lock);
          yield* bitfield_store(w.root.role, ROLE.invalid, 1);
          w.out.push(yield* tdp_mmu_zap_leafs(w.kvm, w.root, 0, 16, false, false));
          yield* write_unlock(w.kvm.mmu_lock); // an invalid root owes nothing either way
        },
      ]);
      expect(run(program).violations).toEqual([]);
      expect(w().out).toEqual([want]);
    }
  });

  it("in the 5.17 shape also frees the tables wholly inside the range", () => {
    for (const [kernel, tables] of [
      ["v5.17", 7],
      ["v6.9", 14],
    ] as const) {
      const { program, w } = prog({ ptes: 2, kernel, machine: quiet }, fillAll, [
        function* (w) {
          yield* write_lock(w.kvm.mmu_lock);
          if (yield* tdp_mmu_zap_leafs(w.kvm, w.root, 0, 8, false, false)) yield* kvm_flush(w);
          yield* write_unlock(w.kvm.mmu_lock);
        },
      ]);
      expect(run(program).violations).toEqual([]);
      expect(tablePages(w().kvm)).toHaveLength(tables);
      expect(peekLeaves(w().kvm, w().root)).toHaveLength(8);
    }
  });

  it("flushes before it yields; a yield without the flush is a lost flush (inv 17)", () => {
    const body = function* (w: W) {
      yield* write_lock(w.kvm.mmu_lock);
      const flush = yield* tdp_mmu_zap_leafs(w.kvm, w.root, 0, 16, true, false);
      if (flush) yield* kvm_flush(w);
      yield* write_unlock(w.kvm.mmu_lock);
    };
    const mk = () => prog({ ptes: 2, machine: { needResched: "always" } }, fillAll, [body]);
    const good = run(mk().program);
    expect(good.violations).toEqual([]);
    const skipFlush = new Map<string, Function>([
      [
        "tdp_mmu_iter_cond_resched",
        (
          orig: typeof tdp_mmu_iter_cond_resched.impl,
          kvm: Kvm,
          iter: never,
          _flush: boolean,
          shared: boolean,
        ) => orig(kvm, iter, false, shared),
      ],
    ]);
    const bad = run(mk().program, skipFlush);
    expect(bad.violations[0]?.invariant).toBe("inv17-no-lost-flush");
  });
});

function* kvm_flush(w: W): Gen<void> {
  yield* kvm_flush_remote_tlbs(w.kvm);
}

describe("tdp_mmu_zap_root", () => {
  function zapAll(kernel: string, shared: boolean, mc: Partial<MachineConfig> = quiet) {
    const { program, w } = prog({ ptes: 2, kernel, machine: mc }, fillAll, [
      function* (w) {
        if (shared) yield* read_lock(w.kvm.mmu_lock);
        else yield* write_lock(w.kvm.mmu_lock);
        yield* tdp_mmu_zap_root(w.kvm, w.root, shared);
        if (shared) yield* read_unlock(w.kvm.mmu_lock);
        else yield* write_unlock(w.kvm.mmu_lock);
      },
    ]);
    const r = runProgram(program, { scheduler: new RoundRobinScheduler(), record: true });
    return { r, w: w() };
  }

  for (const kernel of ["v5.17", "v5.18", "v6.9"]) {
    for (const shared of [true, false]) {
      it(`${kernel}, ${shared ? "read" : "write"} lock: frees every table after a grace period, keeps the root`, () => {
        const { r, w } = zapAll(kernel, shared);
        expect(r.violations).toEqual([]);
        expect(peekLeaves(w.kvm, w.root)).toEqual([]);
        expect(tablePages(w.kvm)).toEqual([]);
        expect([...w.m.live].map((o) => o.kind).sort()).toEqual(["kvm", "tdp_root"]);
        expect(w.kvm.tdp_mmu_pages.v).toBe(0);
        expect(w.kvm.stats.pagesFreed).toBe(14);
        expect(w.m.rcuPending.size).toBe(0);
        expect(w.root.kobj.freed).toBeNull();
      });
    }
  }

  it("before 5.18 (bb95dfb9e2df) each removed table was flushed by its remover; since, by the caller", () => {
    expect(zapAll("v5.17", false).w.kvm.stats.remoteTlbFlushes).toBe(14);
    expect(zapAll("v5.18", false).w.kvm.stats.remoteTlbFlushes).toBe(0);
  });

  /** Which model functions wrote the 4K leaves' SPTEs (the level-1 tables' entries). */
  function leafWriters(r: RunResult): string[] {
    const names = r.objectNames;
    const fns = new Set<string>();
    for (const s of r.trace!) {
      if (s.kind === "read" || s.kind === "wait") continue;
      if (/^sp#\d+\(L1,/.test(names[s.obj]) && /spte\[/.test(names[s.obj])) fns.add(s.fn);
    }
    return [...fns].sort();
  }

  it("passes: 4K leaves are zapped by a 4K pass in 6.9, torn down with their tables before", () => {
    const noProve = { ...quiet, proveMmu: false };
    const byPass = (r: RunResult) => leafWriters(r).includes("__tdp_mmu_set_spte_atomic");
    expect(byPass(zapAll("v6.9", true, noProve).r)).toBe(true);
    // With CONFIG_KVM_PROVE_MMU the 4K and 2M passes are skipped on purpose.
    expect(byPass(zapAll("v6.9", true, quiet).r)).toBe(false);
    expect(byPass(zapAll("v5.18", true, noProve).r)).toBe(false);
    expect(byPass(zapAll("v5.17", true, noProve).r)).toBe(false);
    // Torn down with their table, the leaves are frozen by handle_removed_pt.
    expect(leafWriters(zapAll("v5.18", true, noProve).r)).toEqual(["handle_removed_pt"]);
  });

  it("the 1G pass precedes the top-level pass (two-pass) but not in 5.17", () => {
    // Count non-leaf zaps at level 3 done by a pass (not by handle_removed_pt recursion).
    const level3 = (r: RunResult) =>
      r.trace!.filter(
        (s) =>
          s.fn === "__tdp_mmu_set_spte_atomic" &&
          /^sp#\d+\(L3,/.test(r.objectNames[s.obj]) &&
          s.step === "try_cmpxchg",
      ).length;
    expect(level3(zapAll("v5.18", true).r)).toBe(4);
    expect(level3(zapAll("v5.17", true).r)).toBe(0);
  });

  it("WARNs when the root has no reference (5.18+), not in the 5.17 shape", () => {
    for (const [kernel, warns] of [
      ["v5.18", true],
      ["v5.17", false],
    ] as const) {
      const { program } = prog({ ptes: 2, kernel, machine: quiet }, fillAll, [
        function* (w) {
          w.root.tdp_mmu_root_count.v = 0;
          yield* read_lock(w.kvm.mmu_lock);
          yield* tdp_mmu_zap_root(w.kvm, w.root, true);
          yield* read_unlock(w.kvm.mmu_lock);
        },
      ]);
      const r = run(program);
      expect(r.violations.length > 0 && r.violations[0].message.includes("refcount_read")).toBe(warns);
    }
  });

  it("yields and restarts from the root when asked to, and still zaps everything", () => {
    const { r, w } = zapAll("v6.9", true, { needResched: "always" });
    expect(r.violations).toEqual([]);
    expect(tablePages(w.kvm)).toEqual([]);
    expect(r.trace!.some((s) => s.step === "read_unlock" && s.fn === "tdp_mmu_iter_cond_resched")).toBe(true);
  });
});

describe("a fault concurrent with tdp_mmu_zap_root under the read lock", () => {
  /** Root: one 1G leaf (gfn 0-3) under an L3 table. vCPU faults gfn 5 (4K) while the root is zapped. */
  function race(o: TestVmOptions) {
    let cur: { kvm: Kvm; root: KvmMmuPage; m: Machine; ret: RetPf[] } | null = null;
    const program: Program = ({ spawn }) => {
      const kvm = makeVm({ ptes: 2, machine: quiet, ...o });
      const root = makeRoot(kvm, 2);
      populate(kvm, root, 0, 3);
      const v = makeVcpu(kvm, root);
      const c = { kvm, root, m: machine(), ret: [] as RetPf[] };
      cur = c;
      spawn(
        "vcpu",
        (function* () {
          c.ret.push(yield* kvm_tdp_mmu_page_fault(v, 5, true, { maxLevel: 2 }));
        })(),
      );
      spawn(
        "zapper",
        (function* () {
          yield* read_lock(kvm.mmu_lock);
          yield* tdp_mmu_zap_root(kvm, root, true);
          yield* read_unlock(kvm.mmu_lock);
        })(),
      );
    };
    return { program, cur: () => cur! };
  }

  it("no use-after-free, no violation, nothing leaked, in every schedule (sleep sets)", () => {
    const { program, cur } = race({ kernel: "v6.9" });
    const problems: string[] = [];
    const res = exploreSleepSets(program, {}, (r) => {
      const c = cur();
      const leaves = peekLeaves(c.kvm, c.root);
      const live = [...c.m.live].filter((o) => o.kind === "tdp_page").length;
      const ok =
        r.violations.length === 0 &&
        c.m.rcuPending.size === 0 &&
        live === tablePages(c.kvm).length &&
        live === c.kvm.tdp_mmu_pages.v &&
        leaves.every(([g]) => g === 4) &&
        (leaves.length === 0 || c.ret[0] === "RET_PF_FIXED");
      if (!ok && problems.length === 0)
        problems.push(JSON.stringify({ v: r.violations, ret: c.ret, leaves, live }));
    });
    expect(problems).toEqual([]);
    expect(res.complete).toBe(true);
    expect(res.executions).toBeGreaterThan(20);
  });

  it("a page table freed without call_rcu (E0-style immediate free) is caught", () => {
    // The page is freed right after it is unlinked, while the fault may still be walking it.
    const freeNow = new Map<string, Function>([
      [
        "handle_removed_pt",
        function* (
          orig: (kvm: Kvm, sp: KvmMmuPage, shared: boolean) => Gen<void>,
          kvm: Kvm,
          sp: KvmMmuPage,
          s: boolean,
        ) {
          yield* orig(kvm, sp, s);
          yield* tdp_mmu_free_sp(sp, kvm);
        },
      ],
    ]);
    // With the page-table checks on, the free itself breaks invariant 5 in every schedule.
    const checked = exploreSleepSets(race({ kernel: "v6.9" }).program, {
      overrides: freeNow,
      stopOnFirst: true,
    });
    expect(checked.firstViolation?.violations[0].invariant).toBe("inv5-rcu-free-page-table");
    // Without them, some schedule has the walker touch the freed table: a use-after-free.
    const kinds = new Set<string>();
    exploreSleepSets(race({ kernel: "v6.9", checks: false }).program, { overrides: freeNow }, (r) => {
      for (const v of r.violations) kinds.add(v.invariant);
    });
    expect(kinds).toContain("use-after-free");
  });
});
