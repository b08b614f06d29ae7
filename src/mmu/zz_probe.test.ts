import { it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import type { Gen } from "../engine/op.js";
import { rootsProgram, spawnTask } from "./roots_testkit.js";
import { vcpuTask, destroyVmTask } from "./workloads.js";
import { mutex_lock, mutex_unlock } from "../kernel/spinlock.js";
import { kvm_mmu_zap_all_fast } from "./tdp_mmu_invalidate.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm } from "./kvm_destroy.js";
import { kvm_mmu_unload } from "./vcpu.js";
import type { Kvm, Vcpu } from "./types.js";
import { exploreSleepSets } from "./testing.js";

function* unloadTask(v: Vcpu): Gen<void> { kvm_get_kvm_at_spawn(v.kvm); yield* kvm_mmu_unload(v); yield* kvm_put_kvm(v.kvm); }
function* fastZapTask(kvm: Kvm): Gen<void> { kvm_get_kvm_at_spawn(kvm); yield* mutex_lock(kvm.slots_lock); yield* kvm_mmu_zap_all_fast(kvm); yield* mutex_unlock(kvm.slots_lock); yield* kvm_put_kvm(kvm); }
it("probe", () => {
  for (const kernel of ["v5.17","v5.18","v6.4","v6.6","v6.9","v6.15"]) {
    for (const faults of [[], [{gfn:1}]]) {
    const prog = rootsProgram({ kernel }, function* ({ kvm, vcpus: [v] }) {
      yield* vcpuTask(v, { faults, unload: false });
      yield* spawnTask("unload", unloadTask(v));
      yield* spawnTask("fastzap", fastZapTask(kvm));
      yield* destroyVmTask(kvm);
    });
    let t = Date.now();
    const r = enumerateAll(prog, { maxExecutions: 200000 });
    const t1 = Date.now() - t; t = Date.now();
    const s = exploreSleepSets(prog, { maxExecutions: 200000 });
    console.log(kernel, faults.length, "enum", r.executions, r.complete, !!r.firstViolation, t1, "ms; sleep", s.executions, s.pruned, s.complete, !!s.firstViolation, Date.now()-t, "ms", r.firstViolation?.violations[0]?.message);
    }
  }
});
