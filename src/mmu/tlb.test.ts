import { describe, expect, it } from "vitest";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { type Machine, machine } from "../kernel/machine.js";
import { write_lock, write_unlock } from "../kernel/rwlock.js";
import { tdp_mmu_zap_leafs } from "./tdp_mmu_zap.js";
import { makeRoot, makeVm, populate } from "./testing.js";
import { kvm_flush_remote_tlbs, kvm_flush_remote_tlbs_gfn, kvm_flush_remote_tlbs_range } from "./tlb.js";
import type { Kvm } from "./types.js";

/** Zap gfns [0, 4) (4K leaves) under the write lock, then flush as `flush` says, then unlock. */
function zapThen(flush: (kvm: Kvm) => Gen<void>) {
  let kvm: Kvm | null = null;
  let m: Machine | null = null;
  const program: Program = ({ spawn }) => {
    const k = makeVm({ ptes: 2, machine: { needResched: "never" } });
    kvm = k;
    m = machine();
    const root = makeRoot(k, 1);
    for (let g = 0; g < 4; g++) populate(k, root, g, 1);
    spawn(
      "t",
      (function* () {
        yield* write_lock(k.mmu_lock);
        yield* tdp_mmu_zap_leafs(k, root, 0, 4, false, false);
        yield* flush(k);
        yield* write_unlock(k.mmu_lock);
      })(),
    );
  };
  const r = runProgram(program, { scheduler: new RoundRobinScheduler(), record: true });
  return { r, kvm: kvm!, m: m! };
}

describe("kvm_flush_remote_tlbs", () => {
  it("counts the flush for the VM and the machine and is an access of the VM's tlb word", () => {
    const { r, kvm, m } = zapThen((k) => kvm_flush_remote_tlbs(k));
    expect(r.violations).toEqual([]);
    expect(kvm.stats.remoteTlbFlushes).toBe(1);
    expect(m.tlbFlushes).toBe(1);
    expect(kvm.tlb.v).toBe(1);
    const last = r.trace!.filter((s) => s.obj === kvm.tlb.id);
    expect(last.map((s) => s.fn)).toEqual(["kvm_flush_remote_tlbs"]);
  });

  it("a ranged flush pays only for what it covers", () => {
    expect(zapThen((k) => kvm_flush_remote_tlbs_range(k, 0, 4)).r.violations).toEqual([]);
    expect(zapThen((k) => kvm_flush_remote_tlbs_gfn(k, 1, 3)).r.violations).toEqual([]);
    const partial = zapThen((k) => kvm_flush_remote_tlbs_range(k, 0, 2)).r;
    expect(partial.violations[0]?.invariant).toBe("inv17-no-lost-flush");
    expect(partial.violations[0]?.details).toMatchObject({ start: 2, end: 3 });
  });
});
