import { describe, expect, it } from "vitest";
import { explore } from "../engine/explore/explore.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { peekEntries } from "../kernel/rculist.js";
import type { Features } from "./features.js";
import { kvm_vcpu_create } from "./kvm.js";
import { kvm_recover_nx_huge_pages, nxRecoveryTask } from "./nx_huge_page_recovery.js";
import { describeSpte } from "./spte.js";
import { kvm_tdp_mmu_page_fault } from "./tdp_mmu_map.js";
import { makeVm, peekLeaves } from "./testing.js";
import type { Kvm, Vcpu } from "./types.js";
import { kvm_mmu_load } from "./vcpu.js";
import { dirtyLogDisableTask } from "./workloads.js";

const quiet = { needResched: "never", preemption: "none" } as const;

interface World {
  kvm: Kvm;
  vcpus: Vcpu[];
}

/** A VM with the NX mitigation (2 SPTEs per table: a 1G page is gfns 8..11), `n` vCPUs. */
function world(n: number, features: Partial<Features> = {}, kernel = "v6.15"): World {
  const kvm = makeVm({ kernel, ptes: 2, machine: quiet, features, nxRecoveryRatio: 1 });
  return { kvm, vcpus: Array.from({ length: n }, () => kvm_vcpu_create(kvm)) };
}

/** vCPU 0 loads a root and fetches from gfn 9: the mitigation maps it 4K. */
function* execFault(w: World): Gen<string> {
  yield* kvm_mmu_load(w.vcpus[0]);
  return yield* kvm_tdp_mmu_page_fault(w.vcpus[0], 9, false, { exec: true });
}

const leaves = (w: World) =>
  peekLeaves(w.kvm, w.vcpus[0].root!).map(([g, l, s]) => `${g}@${l}:${describeSpte(s, l)}`);
const listed = (w: World) => peekEntries(w.kvm.nx!.possible_nx_huge_pages).map((sp) => sp.kobj.name);

function runOne(w: () => World, body: (w: World) => Gen<void>, overrides = new Map()) {
  let cur!: World;
  const p: Program = ({ spawn }) => {
    cur = w();
    spawn("t0", body(cur));
  };
  const r = runProgram(p, { scheduler: new RoundRobinScheduler(), overrides });
  return { r, w: cur };
}

describe("the NX huge page mitigation in the fault path", () => {
  it("a fetch maps 4K and lists the tables that stand where a huge page could be", () => {
    const { r, w } = runOne(
      () => world(1),
      function* (w) {
        expect(yield* execFault(w)).toBe("RET_PF_FIXED");
      },
    );
    expect(r.violations).toEqual([]);
    expect(leaves(w)).toEqual(["9@1:leaf pfn=65545 WA"]);
    // The 1G-level table (L2) and the 2M-level one (L1): req_level was 1G.
    expect(listed(w)).toEqual([expect.stringMatching(/\(L2,gfn=8\)/), expect.stringMatching(/\(L1,gfn=8\)/)]);
    expect(w.kvm.nx!.nx_lpage_splits.v).toBe(2);
  });

  it("disallowed_hugepage_adjust: a data access next to it maps inside the NX table, not over it", () => {
    const { r, w } = runOne(
      () => world(1),
      function* (w) {
        yield* execFault(w);
        yield* kvm_tdp_mmu_page_fault(w.vcpus[0], 8, false);
      },
    );
    expect(r.violations).toEqual([]);
    expect(leaves(w)).toEqual(["8@1:leaf pfn=65544 WA", "9@1:leaf pfn=65545 WA"]);
  });
});

describe("NX huge page recovery (kvm_recover_nx_huge_pages)", () => {
  for (const readLock of [false, true]) {
    it(`${readLock ? "6.18, read lock" : "up to 6.17, write lock"}: zaps the listed tables, and the range maps huge again`, () => {
      const { r, w } = runOne(
        () => world(1, { nxRecoveryUnderReadLock: readLock }),
        function* (w) {
          yield* execFault(w);
          yield* kvm_recover_nx_huge_pages(w.kvm);
          expect(yield* kvm_tdp_mmu_page_fault(w.vcpus[0], 9, false)).toBe("RET_PF_FIXED");
        },
      );
      expect(r.violations).toEqual([]);
      expect(listed(w)).toEqual([]);
      expect(w.kvm.nx!.nx_lpage_splits.v).toBe(0);
      expect(leaves(w)).toEqual(["8@3:leaf pfn=65544 WA"]);
    });
  }
});
