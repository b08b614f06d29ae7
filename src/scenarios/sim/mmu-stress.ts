import type { Gen } from "../../engine/op.js";
import type { ProgramContext } from "../../engine/runtime.js";
import type { CostModel } from "../../engine/sim/cost-model.js";
import { simulate } from "../../engine/sim/simulator.js";
import { Atomic, atomic_fetch_add, READ_ONCE, WRITE_ONCE } from "../../kernel/atomic.js";
import { list_add_rcu } from "../../kernel/rculist.js";
import { kernelView, simMachineConfig } from "../../kernel/sim-view.js";
import { populate_compressed, summarisedBlocks } from "../../mmu/compressed.js";
import { ghost_root_published } from "../../mmu/invariants/roots.js";
import {
  kvm_mmu_notifier_invalidate_range_end,
  kvm_mmu_notifier_invalidate_range_start,
  kvm_mmu_notifier_release,
} from "../../mmu/mmu_notifier.js";
import { kvm_mmu_init_tdp_mmu } from "../../mmu/tdp_mmu_invalidate.js";
import { host_memory_backing, host_mprotect, kvm_tdp_mmu_page_fault } from "../../mmu/tdp_mmu_map.js";
import { tdp_mmu_root_set_owner } from "../../mmu/tdp_mmu_root.js";
import { drive, makeRoot, makeVcpu, makeVm, populate } from "../../mmu/testing.js";
import type { Kvm, Memslot, Vcpu } from "../../mmu/types.js";
import { kvm_mmu_unload, vcpu_enter_guest, vcpu_exit_guest, vcpu_mode } from "../../mmu/vcpu.js";
import { guest_access, kvm_set_memslot_delete } from "../../mmu/workloads.js";
import { HOST_THREAD, type HostPhase, phaseMs, spawnHostPhases, waitForVcpus } from "./dirty-log.js";
import {
  runHooks,
  type SimParams,
  type SimRunOptions,
  type SimScenario,
  type SimScenarioRun,
} from "./types.js";

/**
 * Scenario 5b, timed: tools/testing/selftests/kvm/mmu_stress_test.c (max_guest_memory_test before
 * Aug 2024, the A1 workload). One prefaulted, 4K-mapped memfd backs every slot; N vCPUs split the
 * guest and, stage by stage with a rendezvous between stages:
 *   run1: write every page (a fault per page; the host pages are resident);
 *   reset: toggle CR0.WP, i.e. kvm_mmu_reset_context() -> kvm_mmu_unload(): each vCPU puts its
 *     root. v5.17: the last put zaps the whole root synchronously under the write mmu_lock (A1's
 *     900 s at 64 TiB); v5.18: it goes defunct and the worker zaps it; 6.4+: the TDP MMU's own
 *     reference keeps it (6.4 also stopped unloading on CR0.WP with TDP, 01b31714bd90, which the
 *     model does not separate: the reload finds the same root);
 *   run2: write every page again (into a new root before 6.4);
 *   ro: mprotect(PROT_READ) (an mmu_notifier invalidation of everything) while the vCPUs read every
 *     page, then write until every write gets -EFAULT;
 *   rw: mprotect(PROT_READ|PROT_WRITE) while the vCPUs write every page, retrying on -EFAULT.
 * Then the host deletes the even slots and munmaps half the backing, and exits (mmu_notifier
 * release). The host thread's phases are tasks on its own CPU (spawnHostPhases), so each printed
 * time is a task's span. With populate=prefault, run1 happens before time 0 (the root is built
 * compressed, src/mmu/compressed.ts, so guests of many TiB fit) and stages=reset stops after the
 * reset, which is all a multi-TiB guest can afford: run2 and later touch every page.
 */

const PAGE = 4096;
/** Re-entries of one access before the guest gives up on it (a retry loop the real guest never leaves). */
const MAX_RETRIES = 100_000;

interface StressConfig {
  readonly kernel: string;
  readonly vcpus: number;
  readonly pages: number;
  readonly slotPages: number;
  readonly prefault: boolean;
  readonly throughReset: boolean;
  readonly preemption: "none" | "voluntary" | "full";
}

/** Words the host thread and the vCPU threads share (user space and guest memory). */
interface StressShared {
  /** The stage the host released the vCPUs into (the rendezvous). */
  readonly stage: Atomic;
  readonly quit: Atomic;
  /** mprotect_ro_done and all_vcpus_hit_ro_fault, guest-visible. */
  readonly roDone: Atomic;
  readonly allHit: Atomic;
  readonly nrRoFaults: Atomic;
}

/**
 * What user space does when a guest access gets -EFAULT: skip the store (stage 3), or, when null,
 * run the vCPU again on the same instruction (stage 4, and any stage where it cannot happen).
 */
type OnEfault = (() => Gen<"skip" | "retry">) | null;

/** One guest pass over [start, start + pages): each access faults into KVM when the EPT does not allow it. */
function* guestPass(
  vcpu: Vcpu,
  start: number,
  pages: number,
  write: boolean,
  st: { inGuest: boolean },
  onEfault: OnEfault,
): Gen<void> {
  for (let p = 0; p < pages; p++) {
    const gfn = start + p;
    for (let attempt = 0; attempt <= MAX_RETRIES; attempt++) {
      if (!st.inGuest) {
        if (!(yield* vcpu_enter_guest(vcpu))) continue;
        st.inGuest = true;
      }
      if (yield* guest_access(vcpu, gfn, write)) break;
      yield* vcpu_exit_guest(vcpu);
      st.inGuest = false;
      const r = yield* kvm_tdp_mmu_page_fault(vcpu, gfn, write);
      if (r === "-EFAULT" && onEfault !== null && (yield* onEfault()) === "skip") break;
    }
  }
}

/** GUEST_SYNC: the ucall exits to user space. */
function* guestSync(vcpu: Vcpu, st: { inGuest: boolean }): Gen<void> {
  if (!st.inGuest) while (!(yield* vcpu_enter_guest(vcpu))) {}
  yield* vcpu_exit_guest(vcpu);
  st.inGuest = false;
}

/** The vCPU thread's wait at a rendezvous: spin until the host releases stage `s` (or quits). */
function* rendezvous(sh: StressShared, s: number): Gen<boolean> {
  yield {
    kind: "wait",
    obj: sh.stage.id,
    objs: [sh.quit.id],
    fn: "<task>",
    step: `cpu_relax() until the host releases stage ${s}`,
    enabled: () => sh.stage.v >= s || sh.quit.v !== 0,
  };
  return sh.quit.v === 0;
}

/** vcpu_worker() of mmu_stress_test.c. */
function* stressVcpu(
  vcpu: Vcpu,
  start: number,
  pages: number,
  prefault: boolean,
  nrVcpus: number,
  sh: StressShared,
  done: Atomic,
): Gen<void> {
  vcpu_mode(vcpu);
  const st = { inGuest: false };
  const noEfault: OnEfault = null;
  if (!prefault) {
    if (!(yield* rendezvous(sh, 1))) return;
    yield* guestPass(vcpu, start, pages, true, st, noEfault);
    yield* guestSync(vcpu, st);
    yield* WRITE_ONCE(done, 1);
  }
  if (!(yield* rendezvous(sh, 2))) return;
  // vcpu_sregs_set() with CR0.WP toggled: kvm_post_set_cr0() -> kvm_mmu_reset_context().
  yield* kvm_mmu_unload(vcpu);
  yield* WRITE_ONCE(done, 2);
  if (!(yield* rendezvous(sh, 3))) return;
  yield* guestPass(vcpu, start, pages, true, st, noEfault);
  yield* guestSync(vcpu, st);
  yield* WRITE_ONCE(done, 3);
  if (!(yield* rendezvous(sh, 4))) return;
  // Stage 2: read everything while mprotect(PROT_READ) lands.
  yield* guestPass(vcpu, start, pages, false, st, noEfault);
  yield* guestSync(vcpu, st);
  // Stage 3: write until the memory is read-only and every vCPU has seen -EFAULT; each -EFAULT
  // exits to user space, which skips the store.
  let first = true;
  const skip: OnEfault = function* () {
    if (first) {
      first = false;
      const n = (yield* atomic_fetch_add(sh.nrRoFaults, 1)) + 1;
      if (n === nrVcpus) yield* WRITE_ONCE(sh.allHit, 1);
    }
    return "skip";
  };
  do {
    yield* guestPass(vcpu, start, pages, true, st, skip);
  } while ((yield* READ_ONCE(sh.roDone)) === 0 || (yield* READ_ONCE(sh.allHit)) === 0);
  yield* guestSync(vcpu, st);
  yield* WRITE_ONCE(done, 4);
  if (!(yield* rendezvous(sh, 5))) return;
  // Stage 4: write everything, re-running a store that got -EFAULT until mprotect(RW) lands.
  yield* guestPass(vcpu, start, pages, true, st, noEfault);
  yield* guestSync(vcpu, st);
  yield* WRITE_ONCE(done, 5);
}

/** The host's mprotect() of the whole backing: change_protection() between the notifier's start and end. */
function* mprotect(kvm: Kvm, pages: number, writable: boolean): Gen<void> {
  yield* kvm_mmu_notifier_invalidate_range_start(kvm, 0, pages);
  host_mprotect(kvm, 0, pages, writable);
  yield* kvm_mmu_notifier_invalidate_range_end(kvm, 0, pages);
}

interface StressNotes {
  kvm: Kvm | null;
  readonly faults: Record<string, number>;
}

function program(c: StressConfig, notes: StressNotes) {
  return ({ spawn }: ProgramContext) => {
    const kvm = makeVm({
      kernel: c.kernel,
      ptes: 512,
      rootLevel: c.pages > 512 ** 4 ? 5 : 4,
      memslotPages: Math.min(c.slotPages, c.pages),
      machine: { ...simMachineConfig(c.preemption), proveMmu: false },
      checks: false,
    });
    notes.kvm = kvm;
    kvm_mmu_init_tdp_mmu(kvm);
    const slots: Memslot[] = [kvm.memslots[0]];
    for (let base = c.slotPages; base < c.pages; base += c.slotPages) {
      const s: Memslot = {
        id: slots.length,
        as_id: 0,
        base_gfn: base,
        npages: Math.min(c.slotPages, c.pages - base),
        flags: 0,
        deleted: false,
      };
      kvm.memslots.push(s);
      slots.push(s);
    }
    // One memfd, prefaulted by the test and madvise(MADV_NOHUGEPAGE): resident 4K pages.
    host_memory_backing(kvm, 0, c.pages, { resident: true, hugepages: false });
    const persistent = kvm.features.persistentRoots ? 1 : 0;
    const root = makeRoot(kvm, persistent + c.vcpus);
    tdp_mmu_root_set_owner(kvm, root);
    drive(list_add_rcu(root.link, kvm.tdp_mmu_roots));
    ghost_root_published(kvm, root);
    if (c.prefault) {
      if (c.pages > 2 ** 18) populate_compressed(kvm, root, c.pages);
      else for (let gfn = 0; gfn < c.pages; gfn++) populate(kvm, root, gfn);
    }

    const sh: StressShared = {
      stage: new Atomic("rendezvous", 0, null),
      quit: new Atomic("quit", 0, null),
      roDone: new Atomic("mprotect_ro_done", 0, null),
      allHit: new Atomic("all_vcpus_hit_ro_fault", 0, null),
      nrRoFaults: new Atomic("nr_ro_faults", 0, null),
    };
    const per = Math.floor(c.pages / c.vcpus);
    const done: Atomic[] = [];
    for (let v = 0; v < c.vcpus; v++) {
      const d = new Atomic(`vcpu${v}.stage_done`, c.prefault ? 1 : 0, null);
      done.push(d);
      spawn(`vcpu${v}`, stressVcpu(makeVcpu(kvm, root), v * per, per, c.prefault, c.vcpus, sh, d));
    }

    const phase = (name: string, body: () => Gen<void>): HostPhase => ({
      name,
      *run() {
        const before = kvm.stats.faults;
        yield* body();
        notes.faults[name] = kvm.stats.faults - before;
      },
    });
    const release = (s: number) =>
      function* (): Gen<void> {
        yield* WRITE_ONCE(sh.stage, s);
        yield* waitForVcpus(done, s);
      };
    const phases: HostPhase[] = [];
    if (!c.prefault) phases.push(phase("run1", release(1)));
    phases.push(phase("reset", release(2)));
    if (c.throughReset) {
      phases.push(
        phase("quit", function* () {
          yield* WRITE_ONCE(sh.quit, 1);
        }),
      );
    } else {
      phases.push(
        phase("run2", release(3)),
        phase("ro", function* () {
          yield* WRITE_ONCE(sh.stage, 4);
          yield* mprotect(kvm, c.pages, false);
          yield* WRITE_ONCE(sh.roDone, 1);
          yield* waitForVcpus(done, 4);
        }),
        phase("rw", function* () {
          yield* WRITE_ONCE(sh.stage, 5);
          yield* mprotect(kvm, c.pages, true);
          yield* waitForVcpus(done, 5);
        }),
        phase("delete", function* () {
          // Even-numbered slots, highest first (the selftest's slots start at 1: its even ones are
          // the model's odd indices).
          for (let i = slots.length - 1; i >= 0; i--) {
            if ((i + 1) % 2 === 0) yield* kvm_set_memslot_delete(kvm, slots[i]);
          }
        }),
        phase("munmap", function* () {
          // munmap() of the first half of the backing: in every slot that still aliases it.
          for (const s of slots) {
            if (s.deleted) continue;
            yield* kvm_mmu_notifier_invalidate_range_start(
              kvm,
              s.base_gfn,
              s.base_gfn + Math.floor(s.npages / 2),
            );
            yield* kvm_mmu_notifier_invalidate_range_end(
              kvm,
              s.base_gfn,
              s.base_gfn + Math.floor(s.npages / 2),
            );
          }
        }),
        phase("exit", function* () {
          // The process exits without cleanup: mmu_notifier release.
          yield* kvm_mmu_notifier_release(kvm);
        }),
      );
    }
    spawnHostPhases(spawn, phases);
  };
}

/** The scenario's limit on simulated pages when every page is touched during the run. */
const MAX_TOUCHED_PAGES = 2 ** 18;

function configOf(params: SimParams): StressConfig {
  const pages = Math.floor(Number(params.memory) / PAGE);
  const slotPages = Math.max(1, Math.floor(Number(params.slotSize) / PAGE));
  const prefault = params.populate === "prefault";
  const throughReset = params.stages === "reset";
  if (!(prefault && throughReset) && pages > MAX_TOUCHED_PAGES) {
    throw new RangeError(
      `mmu-stress: memory ${params.memory} touches ${pages} pages during the run (limit ${MAX_TOUCHED_PAGES}, 1GiB); ` +
        "use populate=prefault stages=reset for larger guests",
    );
  }
  return {
    kernel: String(params.kernel),
    vcpus: Math.max(1, Math.min(Number(params.vcpus), pages)),
    pages,
    slotPages,
    prefault,
    throughReset,
    preemption: params.preemption as StressConfig["preemption"],
  };
}

/** Run mmu_stress_test once. Deterministic. */
export function runMmuStress(
  params: SimParams,
  costs: Partial<CostModel> = {},
  opts: SimRunOptions = {},
): SimScenarioRun & { readonly phaseFaults: Readonly<Record<string, number>> } {
  const c = configOf(params);
  const notes: StressNotes = { kvm: null, faults: {} };
  const N = c.vcpus;
  const result = simulate(program(c, notes), {
    kernel: kernelView,
    cpus: N + 2,
    preemption: c.preemption,
    // vCPUs on their own CPUs, the host thread on the next, kworkers and RCU callbacks on the last.
    binding: (n) => (n.startsWith("vcpu") ? Number(n.slice(4)) : n.startsWith(`${HOST_THREAD}:`) ? N : N + 1),
    costs,
    seed: opts.seed ?? 1,
    ...runHooks(opts),
    timeline: opts.timeline,
  });
  const ms = (phase: string) => phaseMs(result, phase);
  const vcpuReset = result.perTask
    .filter((t) => t.name.startsWith("vcpu"))
    .map((t) => t.busyNs)
    .reduce((a, b) => Math.max(a, b), 0);
  const worker = result.perTask.filter((t) => t.name.startsWith("kworker:"));
  const kvm = notes.kvm;
  return {
    label: c.prefault ? "prefaulted" : "populated",
    kernel: c.kernel,
    params,
    metrics: {
      run1Ms: c.prefault ? null : ms("run1"),
      resetMs: ms("reset"),
      run2Ms: c.throughReset ? null : ms("run2"),
      roMs: c.throughReset ? null : ms("ro"),
      rwMs: c.throughReset ? null : ms("rw"),
      deleteMs: c.throughReset ? null : ms("delete"),
      munmapMs: c.throughReset ? null : ms("munmap"),
      releaseMs: c.throughReset ? null : ms("exit"),
      run1Faults: notes.faults.run1 ?? null,
      run2Faults: notes.faults.run2 ?? null,
      roFaults: notes.faults.ro ?? null,
      rwFaults: notes.faults.rw ?? null,
      vcpuMaxBusyMs: vcpuReset / 1e6,
      workerZapMs: worker.length === 0 ? null : worker.reduce((a, t) => a + t.busyNs, 0) / 1e6,
      rootsAllocated: kvm?.stats.rootsAllocated ?? 0,
      summarisedBlocks: kvm === null ? 0 : summarisedBlocks(kvm),
      totalMs: result.virtualNs / 1e6,
    },
    results: [result],
    phaseFaults: notes.faults,
  };
}

export const mmuStress: SimScenario = {
  name: "mmu-stress",
  thread: "002",
  summary:
    "mmu_stress_test: run1 (write every page), reset (CR0.WP toggle: root put), run2, mprotect RO/RW, " +
    "delete even slots, munmap half, exit; stage times as the selftest prints them",
  params: [
    {
      name: "kernel",
      kind: "enum",
      values: ["v5.17", "v5.18", "v6.4", "v6.6", "v6.9", "v6.15"],
      default: "v6.15",
      doc: "v5.17: the last put zaps synchronously (A1); v5.18: defunct root + worker; 6.4+: persistent roots",
    },
    {
      name: "vcpus",
      kind: "int",
      default: 4,
      min: 1,
      max: 512,
      doc: "-c: vCPUs (the test's default is 3/4 of the CPUs)",
    },
    {
      name: "memory",
      kind: "size",
      default: 32 * 2 ** 20,
      min: 2 * 2 ** 20,
      max: 2 ** 50,
      doc:
        "-m: guest memory (the test's default is 128GiB). Every stage after the reset touches every page, " +
        "so with stages=all it is limited to 1GiB (~10 s per 10^5 pages over all stages); only " +
        "populate=prefault stages=reset goes beyond (64TiB: a compressed root, seconds to simulate)",
    },
    {
      name: "slotSize",
      kind: "size",
      default: 8 * 2 ** 20,
      min: PAGE,
      max: 2 ** 50,
      doc: "-s: memslot size (the test's default is 2GiB); every slot aliases the same memfd",
    },
    {
      name: "populate",
      kind: "enum",
      values: ["run", "prefault"],
      default: "run",
      doc: "run: simulate run1; prefault: the root is fully mapped before time 0 (run1 not timed)",
    },
    {
      name: "stages",
      kind: "enum",
      values: ["all", "reset"],
      default: "all",
      doc: "all: every stage; reset: stop after the reset (what a multi-TiB guest can afford)",
    },
    {
      name: "preemption",
      kind: "enum",
      values: ["none", "voluntary", "full"],
      default: "none",
      doc: "kernel preemption model",
    },
  ],
  metrics: [
    { key: "run1Ms", unit: "ms", doc: "run1 = (write every page)" },
    { key: "resetMs", unit: "ms", doc: "reset = (every vCPU's CR0.WP toggle, i.e. root put)" },
    { key: "run2Ms", unit: "ms", doc: "run2 = (write every page again)" },
    { key: "roMs", unit: "ms", doc: "ro = (mprotect RO while vCPUs read, then write until -EFAULT)" },
    { key: "rwMs", unit: "ms", doc: "rw = (mprotect RW while vCPUs write)" },
    { key: "deleteMs", unit: "ms", doc: "deleting the even slots (not printed by the test)" },
    { key: "munmapMs", unit: "ms", doc: "munmap of half the backing (not printed by the test)" },
    { key: "releaseMs", unit: "ms", doc: "mmu_notifier release at exit (not printed by the test)" },
    { key: "run1Faults", unit: "count", doc: "EPT violations in run1" },
    { key: "run2Faults", unit: "count", doc: "EPT violations in run2 (0 when the root survived the reset)" },
    { key: "roFaults", unit: "count", doc: "EPT violations in the ro stage (-EFAULT ones included)" },
    { key: "rwFaults", unit: "count", doc: "EPT violations in the rw stage" },
    {
      key: "vcpuMaxBusyMs",
      unit: "ms",
      doc: "CPU time of the busiest vCPU thread (the sync zap lands on one)",
    },
    { key: "workerZapMs", unit: "ms", doc: "CPU time of the zap workers (v5.18-6.5), or null" },
    { key: "rootsAllocated", unit: "count", doc: "roots allocated during the run" },
    {
      key: "summarisedBlocks",
      unit: "count",
      doc: "subtrees torn down as one bulk access (compressed root)",
    },
    { key: "totalMs", unit: "ms", doc: "end of the run (RCU callbacks and workers included)" },
  ],
  headline: "resetMs",
  run(params: SimParams, costs: Partial<CostModel>, opts?: SimRunOptions): SimScenarioRun[] {
    const { phaseFaults: _f, ...run } = runMmuStress(params, costs, opts);
    return [run];
  },
};
