import { hostState } from "../../mmu/host_mm.js";
import { PG_LEVEL_4K } from "../../mmu/tdp_iter.js";
import { kvm_tdp_mmu_page_fault } from "../../mmu/tdp_mmu_map.js";
import { kvm_mmu_load } from "../../mmu/vcpu.js";
import { memslotDeleteTask } from "../../mmu/workloads.js";
import type { Scenario } from "../define.js";
import { vmScenario } from "./vm.js";

/**
 * L3 (bounded hold) on the walk that does the most work under one lock: zapping a whole root. vCPU 0
 * maps gfns 0, 2 and 4 first, 4K each (two 1G regions with 2-entry tables; the first has both its 2M entries
 * populated, so its teardown is exactly the 7-SPTE default bound), then the slot is deleted and
 * kvm_mmu_zap_all_fast() zaps the root under the read lock, one 1G SPTE per yield point. Alone, so
 * the run is one schedule plus the RCU callbacks' orders: the question is how much work lies
 * between two yield points, not who races whom.
 */
export const boundedHold: Scenario = vmScenario({
  name: "bounded-hold",
  description:
    "vCPU 0 maps gfns 0, 2 and 4 (4K); then deleting the slot zaps the root (kvm_mmu_zap_all_fast), " +
    "a 1G SPTE with its subtree per yield point.",
  exercises:
    "L3-bounded-hold: tdp_mmu_zap_root()'s passes and tdp_mmu_iter_cond_resched() as the yield point; " +
    "with --hold-bound 7 on v5.17, the whole-subtree teardown that 1b6043e8e584 split into passes.",
  defaultKernel: "v6.9",
  machine: { preemption: "none", needResched: "never" },
  ptesPerTable: 2,
  vcpus: [0],
  prologue: function* ({ kvm, vcpus }) {
    hostState(kvm);
    yield* kvm_mmu_load(vcpus[0]);
    for (const gfn of [0, 2, 4])
      yield* kvm_tdp_mmu_page_fault(vcpus[0], gfn, false, { maxLevel: PG_LEVEL_4K });
  },
  body: ({ kvm, spawn }) => {
    spawn("memslot-delete", memslotDeleteTask(kvm, kvm.memslots[0]));
  },
});
