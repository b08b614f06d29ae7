import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { Program } from "../engine/runtime.js";
import { runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { defineVariant, type Variant } from "../index.js";
import { type Atomic, WRITE_ONCE } from "../kernel/atomic.js";
import { write_lock, write_unlock } from "../kernel/rwlock.js";
import { mutex_lock, mutex_unlock } from "../kernel/spinlock.js";
import { runCheck } from "../scenarios/check.js";
import { resolveScenario, resolveVariant, runConfigFor } from "../scenarios/resolve.js";
import { type EptAccess, ept_access } from "./ept_access.js";
import { freeRootFrame, kvm_vcpu_create, reuse_root_frames } from "./kvm.js";
import { is_accessed_spte, is_dirty_spte, is_writable_pte } from "./spte.js";
import { kvm_tdp_mmu_page_fault } from "./tdp_mmu_map.js";
import { tdp_mmu_zap_leafs } from "./tdp_mmu_zap.js";
import { makeRoot, makeVm, peekLeafSptep } from "./testing.js";
import { kvm_flush_remote_tlbs_range } from "./tlb.js";
import type { Kvm, Vcpu } from "./types.js";
import { EXITING_GUEST_MODE, kvm_mmu_load, vcpu_enter_guest, vcpu_exit_guest, vcpu_mode } from "./vcpu.js";
import { tlbCatchUp, tlbLookup } from "./vcpu_tlb.js";
import { guestAccess, kvm_mmu_slot_remove_write_access } from "./workloads.js";

/** Run `body` as one task on a fresh v6.9 VM with one vCPU; returns what it recorded. */
function solo<T>(body: (kvm: Kvm, vcpu: Vcpu, out: T[]) => Generator<unknown, void, unknown>) {
  const out: T[] = [];
  let kvm: Kvm | null = null;
  let vcpu: Vcpu | null = null;
  const program: Program = ({ spawn }) => {
    kvm = makeVm({ ptes: 2, memslotPages: 4, machine: { needResched: "never" } });
    vcpu = kvm_vcpu_create(kvm);
    vcpu_mode(vcpu);
    spawn("vcpu0", body(kvm, vcpu, out) as never);
  };
  const r = runProgram(program, { scheduler: new RoundRobinScheduler() });
  return { r, out, kvm: kvm!, vcpu: vcpu! };
}

describe("ept_access (the CPU's side of a guest access)", () => {
  it("faults on a missing SPTE, then walks, sets Accessed and Dirty, and caches the translation", () => {
    const { r, out, kvm, vcpu } = solo<EptAccess>(function* (_kvm, v, o) {
      yield* kvm_mmu_load(v);
      yield* vcpu_enter_guest(v);
      o.push(yield* ept_access(v, 1, true));
      yield* vcpu_exit_guest(v);
      yield* guestAccess(v, { gfn: 1, write: true }, false, 2);
      o.push(yield* ept_access(v, 1, true));
      yield* vcpu_exit_guest(v);
    });
    expect(r.violations).toEqual([]);
    expect(out).toEqual(["ept-violation", "ok"]);
    const sptep = peekLeafSptep(kvm, vcpu.root!, 1)!;
    expect(is_accessed_spte(sptep.v) && is_dirty_spte(sptep.v)).toBe(true);
    const e = tlbLookup(vcpu, vcpu.root!.hpa, 1)!;
    expect(e.writable && e.dirty && e.sptep === sptep && e.root === vcpu.root).toBe(true);
  });

  it("a write through a clean cached translation sets Dirty in the SPTE", () => {
    const { r, kvm, vcpu } = solo<EptAccess>(function* (_kvm, v) {
      yield* kvm_mmu_load(v);
      yield* guestAccess(v, { gfn: 0, write: false }, false, 2);
      yield* guestAccess(v, { gfn: 0, write: true }, true, 2);
      yield* vcpu_exit_guest(v);
    });
    expect(r.violations).toEqual([]);
    expect(is_dirty_spte(peekLeafSptep(kvm, vcpu.root!, 0)!.v)).toBe(true);
    expect(tlbLookup(vcpu, vcpu.root!.hpa, 0)!.dirty).toBe(true);
  });

  it("a remote flush of the range drops the translation; one of another range does not", () => {
    const { vcpu, out } = solo<boolean>(function* (k, v, o) {
      yield* kvm_mmu_load(v);
      yield* guestAccess(v, { gfn: 0, write: false }, false, 2);
      yield* vcpu_exit_guest(v);
      // A remote flush reaches the TLB when the CPU next looks at it (tlbCatchUp, in ept_access).
      yield* kvm_flush_remote_tlbs_range(k, 8, 1);
      tlbCatchUp(v);
      o.push(tlbLookup(v, v.root!.hpa, 0) !== undefined);
      yield* kvm_flush_remote_tlbs_range(k, 0, 1);
      o.push(tlbLookup(v, v.root!.hpa, 0) !== undefined);
      tlbCatchUp(v);
      o.push(tlbLookup(v, v.root!.hpa, 0) !== undefined);
    });
    expect(out).toEqual([true, true, false]);
    expect(vcpu.tlb.byHpa.get(vcpu.root!.hpa)?.size ?? 0).toBe(0);
  });

  it("loading a root flushes the translations cached under its frame", () => {
    const { out } = solo<number>(function* (_k, v, o) {
      yield* kvm_mmu_load(v);
      yield* guestAccess(v, { gfn: 0, write: false }, false, 2);
      yield* vcpu_exit_guest(v);
      o.push(v.tlb.byHpa.get(v.root!.hpa)!.size);
      yield* kvm_mmu_load(v);
      o.push(v.tlb.byHpa.get(v.root!.hpa)?.size ?? 0);
    });
    expect(out).toEqual([1, 0]);
  });

  it("a kicked vCPU does not access: the kick took it out of the guest", () => {
    const { out } = solo<EptAccess>(function* (_k, v, o) {
      yield* kvm_mmu_load(v);
      yield* vcpu_enter_guest(v);
      yield* WRITE_ONCE(vcpu_mode(v), EXITING_GUEST_MODE);
      o.push(yield* ept_access(v, 0, false));
      yield* vcpu_exit_guest(v);
    });
    expect(out).toEqual(["kicked"]);
  });

  it("a zap under the write lock that stores over a Dirty bit it did not see is spte-lost-dirty", () => {
    // The zap reads the SPTE (Dirty clear), the CPU then sets Dirty, the zap stores 0 over it.
    for (const [xchg, lost] of [
      [false, true],
      [true, false],
    ] as const) {
      const { r } = solo<never>(function* (k, v) {
        (k.features as { volatileSpteXchg: boolean }).volatileSpteXchg = xchg;
        yield* kvm_mmu_load(v);
        yield* guestAccess(v, { gfn: 0, write: false }, false, 2);
        const sptep = peekLeafSptep(k, v.root!, 0)!;
        const clean = sptep.v;
        yield* write_lock(k.mmu_lock);
        // The CPU's locked update lands between the zap's read and its store.
        const zap = tdp_mmu_zap_leafs(k, v.root!, 0, 1, false, false);
        let step = zap.next();
        while (!step.done) {
          const op = step.value as { obj?: number; kind?: string };
          if (op.obj === sptep.id && op.kind !== "read" && sptep.v === clean) {
            sptep.v += 2 ** 9; // the Dirty bit, set by the CPU through its writable translation
          }
          step = zap.next(yield step.value);
        }
        yield* write_unlock(k.mmu_lock);
        yield* vcpu_exit_guest(v);
      });
      const names = r.violations.map((x) => x.invariant);
      expect(names.includes("spte-lost-dirty")).toBe(lost);
    }
  });

  it("a freed root's frame goes to the next root allocated, lowest first", () => {
    const hpas: number[] = [];
    runProgram(
      () => {
        const kvm = makeVm({ ptes: 2 });
        reuse_root_frames(kvm);
        const a = makeRoot(kvm);
        const b = makeRoot(kvm);
        freeRootFrame(kvm, a);
        const c = makeRoot(kvm);
        const d = makeRoot(kvm);
        hpas.push(a.hpa, b.hpa, c.hpa, d.hpa);
      },
      { scheduler: new RoundRobinScheduler() },
    );
    expect(hpas).toEqual([0, 1, 0, 2]);
  });
});

async function checkScenario(
  name: string,
  opts: {
    variant?: string | Variant;
    kernel?: string;
    features?: string[];
    maxExecutions?: number;
    dpor?: boolean;
  },
) {
  const scenario = await resolveScenario(name);
  const variant =
    typeof opts.variant === "object" ? opts.variant : await resolveVariant(opts.variant ?? null);
  const config = runConfigFor(scenario, variant, { kernel: opts.kernel, features: opts.features });
  return runCheck({
    scenario,
    variant,
    variantRef: typeof opts.variant === "string" ? opts.variant : null,
    config,
    featureFlags: opts.features ?? [],
    machineFlags: {},
    explore: {
      strategy: opts.dpor === false ? "portfolio" : "dpor",
      seed: 0n,
      stopOnFirstViolation: true,
      maxExecutions: opts.maxExecutions,
    },
    shrink: false,
  });
}

describe("hardware scenarios", () => {
  it("tlb-root-reuse: safe as the kernel is; without the flush on root load, tlb-stale-access", async () => {
    const ok = await checkScenario("tlb-root-reuse", {});
    expect(ok.status).toBe("ok");
    // DPOR alone must find it too: the frame a new root gets depends on whether the old root's
    // free came first, which only the frame pool's accesses tell the explorer.
    for (const dpor of [false, true]) {
      const bad = await checkScenario("tlb-root-reuse", { variant: "skip-root-load-flush", dpor });
      expect(bad.status).toBe("violation");
      expect(bad.counterexample?.trace.violation?.invariant).toBe("tlb-stale-access");
    }
  });

  it("spte-dirty-race: the plain store of 5.17 (or volatileSpteXchg=off) loses the Dirty bit; XCHG does not", async () => {
    for (const [o, lost] of [
      [{ kernel: "v5.17" }, true],
      [{ kernel: "v6.6", features: ["volatileSpteXchg=off"] as string[] }, true],
      [{ kernel: "v6.6", maxExecutions: 2000 }, false],
    ] as const) {
      const r = await checkScenario("spte-dirty-race", o);
      expect(r.status === "violation", JSON.stringify(o)).toBe(lost);
      if (lost) expect(r.counterexample?.trace.violation?.invariant).toBe("spte-lost-dirty");
    }
  });
});

describe("hardware vCPUs in scenario files", () => {
  it("`hardware: true` on a vcpu-rounds task runs it on the modelled CPU", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-hw-"));
    const file = join(dir, "reuse.yaml");
    writeFileSync(
      file,
      [
        "schemaVersion: 1",
        "name: reuse-from-yaml",
        "kernel: v5.18",
        "machine: { preemption: none, needResched: never }",
        "vm: { rootLevel: 4, ptesPerTable: 2, memslotPages: 4 }",
        "vcpus: [{ smm: 0 }]",
        "tasks:",
        "  - { kind: vcpu-rounds, vcpu: 0, gfns: [0, 0], hardware: true }",
        "  - { kind: destroy-vm }",
        "",
      ].join("\n"),
    );
    const bad = await checkScenario(file, { variant: "skip-root-load-flush", dpor: false });
    expect(bad.counterexample?.trace.violation?.invariant).toBe("tlb-stale-access");
    // Without the option the vCPU only faults: no TLB, nothing to go stale.
    writeFileSync(file, readFileSync(file, "utf8").replace(", hardware: true", ""));
    const plain = await checkScenario(file, { variant: "skip-root-load-flush", maxExecutions: 300 });
    expect(plain.status).not.toBe("violation");
  });
});

describe("host pages taken back after an invalidation", () => {
  // The notifier's zap without its TLB flush: inv17 reports the missing flush at the lock drop; waived
  // here, the consequence shows: the CPU keeps writing the page the host has taken back.
  const noFlush = defineVariant({
    name: "notifier-zap-without-flush",
    description: "remote TLB flushes do nothing",
    overrides: {
      *kvm_flush_remote_tlbs(_orig: unknown, _kvm: unknown) {},
      *kvm_flush_remote_tlbs_range(_orig: unknown, _kvm: unknown, _s: number, _n: number) {},
    },
    waives: ["inv17-no-lost-flush"],
  });

  it("a stale translation to a migrated page is host-page-uaf", async () => {
    const bad = await checkScenario("spte-dirty-race", { variant: noFlush, maxExecutions: 4000 });
    expect(bad.status).toBe("violation");
    expect(bad.counterexample?.trace.violation?.invariant).toBe("host-page-uaf");
    expect((await checkScenario("spte-dirty-race", { maxExecutions: 4000 })).status).not.toBe("violation");
  });
});

describe("the protocol scenarios on the modelled CPU", () => {
  it("--set hardware=1 makes the vCPUs' writes CPU accesses", async () => {
    const s = await resolveScenario("protocol-v5.18");
    const fns = (hardware: number) => {
      const config = runConfigFor(s, null, { params: { vcpus: 1, walkers: 0, fastZaps: 0, hardware } });
      const r = runProgram(s.scenario.build(config), { scheduler: new RoundRobinScheduler(), record: true });
      expect(r.violations).toEqual([]);
      return new Set(r.trace!.map((t) => t.fn));
    };
    expect(fns(1).has("ept_access")).toBe(true);
    expect(fns(0).has("ept_access")).toBe(false);
  });
});

describe("the fast page fault (write-protection faults on the modelled CPU)", () => {
  it("a write to a write-protected SPTE is fixed without mmu_lock: Writable comes back by cmpxchg", () => {
    const { r, out, kvm, vcpu } = solo<string>(function* (k, v, o) {
      yield* kvm_mmu_load(v);
      yield* guestAccess(v, { gfn: 0, write: true }, false, 2);
      yield* vcpu_exit_guest(v);
      // As KVM_SET_USER_MEMORY_REGION does it: the flush is owed until slots_lock is released.
      yield* mutex_lock(k.slots_lock);
      yield* kvm_mmu_slot_remove_write_access(k, k.memslots[0], 1);
      yield* mutex_unlock(k.slots_lock);
      yield* vcpu_enter_guest(v);
      o.push(yield* ept_access(v, 0, true));
      yield* vcpu_exit_guest(v);
      o.push(yield* kvm_tdp_mmu_page_fault(v, 0, true, { present: true }));
    });
    expect(r.violations).toEqual([]);
    expect(out).toEqual(["ept-write-protect", "RET_PF_FIXED"]);
    expect(is_writable_pte(peekLeafSptep(kvm, vcpu.root!, 0)!.v)).toBe(true);
  });

  const FILE = [
    "schemaVersion: 1",
    "name: fast-pf-vs-zap",
    "kernel: v6.6",
    "machine: { preemption: none, needResched: never }",
    "vm: { rootLevel: 4, ptesPerTable: 2, memslotPages: 1 }",
    "vcpus: [{}]",
    "tasks:",
    "  - { kind: vcpu, vcpu: 0, faults: [{ gfn: 0, write: true }, { gfn: 0, write: true }], hardware: true }",
    "  - { kind: dirty-log-enable, slot: 0 }",
    "  - { kind: notifier-invalidate, start: 0, end: 1 }",
    "  - { kind: destroy-vm }",
    "",
  ].join("\n");
  // The fast path's cmpxchg is what keeps it from writing back an SPTE a zap removed meanwhile.
  const plainStore = defineVariant({
    name: "fast-pf-plain-store",
    description: "fast_pf_fix_direct_spte() stores with a plain write instead of a cmpxchg",
    overrides: {
      *fast_pf_fix_direct_spte(_o: unknown, _f: unknown, sptep: Atomic, _old: number, new_spte: number) {
        yield* WRITE_ONCE(sptep, new_spte);
        return true;
      },
    },
  });

  it("a fast path that stores instead of cmpxchg resurrects a zapped SPTE: host-page-uaf", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-fastpf-"));
    const file = join(dir, "fastpf.yaml");
    writeFileSync(file, FILE);
    const bad = await checkScenario(file, { variant: plainStore, dpor: false, maxExecutions: 8000 });
    expect(bad.counterexample?.trace.violation?.invariant).toBe("host-page-uaf");
    const ok = await checkScenario(file, { maxExecutions: 1500 });
    expect(ok.status).not.toBe("violation");
    expect(ok.explore.stats.overridesRan).toEqual([]);
  });
});
