import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { rcu_read_lock, rcu_read_unlock } from "../kernel/rcu.js";
import {
  for_each_tdp_pte,
  for_each_tdp_pte_min_level,
  TdpIter,
  tdp_root_for_each_leaf_pte,
} from "./tdp_iter.js";
import { tdp_mmu_free_sp } from "./tdp_mmu_spte.js";
import { exploreSleepSets, makeRoot, makeVm, populate } from "./testing.js";
import type { Kvm, KvmMmuPage } from "./types.js";

type Visit = [level: number, gfn: number];

/** Root with 4K leaves at gfns 0 and 5 and a 1G leaf at 8 (2 entries per table). */
function fill(kvm: Kvm, root: KvmMmuPage): void {
  populate(kvm, root, 0, 1);
  populate(kvm, root, 5, 1);
  populate(kvm, root, 8, 3);
}

function walk(body: (kvm: Kvm, root: KvmMmuPage, seen: Visit[]) => Gen<void>, checks = true) {
  const seen: Visit[] = [];
  const program: Program = ({ spawn }) => {
    const kvm = makeVm({ ptes: 2, checks, machine: { needResched: "never" } });
    const root = makeRoot(kvm, 1);
    fill(kvm, root);
    spawn("walker", body(kvm, root, seen));
  };
  const r = runProgram(program, { scheduler: new RoundRobinScheduler() });
  return { r, seen };
}

describe("tdp_iter", () => {
  it("walks in pre-order, stepping down only into present tables", () => {
    const { r, seen } = walk(function* (kvm, root, seen) {
      yield* rcu_read_lock();
      yield* for_each_tdp_pte(new TdpIter(kvm), root, 0, 16, (it) => {
        seen.push([it.level, it.gfn]);
      });
      yield* rcu_read_unlock();
    });
    expect(r.violations).toEqual([]);
    expect(seen).toEqual([
      [4, 0],
      [3, 0],
      [2, 0],
      [1, 0],
      [1, 1],
      [2, 2],
      [3, 4],
      [2, 4],
      [1, 4],
      [1, 5],
      [2, 6],
      [4, 8],
      [3, 8],
      [3, 12],
    ]);
  });

  it("stops at min_level, starts at the range's first gfn and ends at its end", () => {
    const { seen } = walk(function* (kvm, root, seen) {
      yield* rcu_read_lock();
      yield* for_each_tdp_pte_min_level(new TdpIter(kvm), root, 3, 0, 16, (it) => {
        seen.push([it.level, it.gfn]);
      });
      seen.push([0, 0]);
      yield* for_each_tdp_pte(new TdpIter(kvm), root, 5, 9, (it) => {
        seen.push([it.level, it.gfn]);
      });
      seen.push([0, 0]);
      yield* tdp_root_for_each_leaf_pte(new TdpIter(kvm), root, 0, 16, (it) => {
        seen.push([it.level, it.gfn]);
      });
      yield* rcu_read_unlock();
    });
    expect(seen).toEqual([
      [4, 0],
      [3, 0],
      [3, 4],
      [4, 8],
      [3, 8],
      [3, 12],
      [0, 0],
      [4, 0],
      [3, 4],
      [2, 4],
      [1, 5],
      [2, 6],
      [4, 8],
      [3, 8],
      [0, 0],
      [1, 0],
      [1, 5],
      [3, 8],
    ]);
  });

  it("after a yield, restarts from the root at next_last_level_gfn and remembers it", () => {
    const { seen } = walk(function* (kvm, root, seen) {
      yield* rcu_read_lock();
      const iter = new TdpIter(kvm);
      let yieldedOnce = false;
      yield* for_each_tdp_pte(iter, root, 0, 8, (it) => {
        seen.push([it.level, it.gfn]);
        if (it.level === 1 && it.gfn === 5 && !yieldedOnce) {
          yieldedOnce = true;
          it.yielded = true; // what tdp_mmu_iter_cond_resched leaves behind
        }
        if (it.level === 1 && it.gfn === 5 && yieldedOnce && !it.yielded) seen.push([-1, it.yielded_gfn]);
      });
      yield* rcu_read_unlock();
    });
    expect(seen.slice(9)).toEqual([
      [1, 5],
      [4, 0],
      [3, 4],
      [2, 4],
      [1, 5],
      [-1, 5],
      [2, 6],
    ]);
  });

  it("dereferencing an SPTE outside RCU is a suspicious rcu_dereference", () => {
    const { r } = walk(function* (kvm, root) {
      yield* for_each_tdp_pte(new TdpIter(kvm), root, 0, 16, () => undefined);
    });
    expect(r.violations[0]?.invariant).toBe("suspicious-rcu");
  });

  it("a walker reaching a freed table gets a use-after-free report", () => {
    let victim: KvmMmuPage | null = null;
    const program: Program = ({ spawn }) => {
      const kvm = makeVm({ ptes: 2, checks: false, machine: { needResched: "never" } });
      const root = makeRoot(kvm, 1);
      fill(kvm, root);
      // The level-1 table holding gfn 5: freed behind the walker's back, still linked.
      victim = [...kvm.pages.values()].find((p) => p.level === 1 && p.gfn === 4)!;
      spawn(
        "walker",
        (function* () {
          yield* rcu_read_lock();
          yield* for_each_tdp_pte(new TdpIter(kvm), root, 0, 16, () => undefined);
          yield* rcu_read_unlock();
        })(),
      );
      spawn(
        "freer",
        (function* () {
          yield* tdp_mmu_free_sp(victim!, kvm);
        })(),
      );
    };
    const kinds = new Set<string>();
    exploreSleepSets(program, {}, (r) => {
      for (const v of r.violations) kinds.add(v.invariant);
    });
    expect(kinds).toEqual(new Set(["use-after-free"]));
  });
});
