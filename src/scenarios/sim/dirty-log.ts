import type { Gen } from "../../engine/op.js";
import type { ProgramContext } from "../../engine/runtime.js";
import type { CostModel } from "../../engine/sim/cost-model.js";
import { type SimResult, simulate } from "../../engine/sim/simulator.js";
import { Atomic, WRITE_ONCE } from "../../kernel/atomic.js";
import { list_add_rcu } from "../../kernel/rculist.js";
import { kernelView, simMachineConfig } from "../../kernel/sim-view.js";
import { ghost_root_published } from "../../mmu/invariants/roots.js";
import { presetByName } from "../../mmu/presets.js";
import { kvm_mmu_init_tdp_mmu } from "../../mmu/tdp_mmu_invalidate.js";
import { host_memory_backing } from "../../mmu/tdp_mmu_map.js";
import { tdp_mmu_root_set_owner } from "../../mmu/tdp_mmu_root.js";
import { drive, makeRoot, makeVcpu, makeVm, peekLeaves } from "../../mmu/testing.js";
import type { Kvm, Memslot } from "../../mmu/types.js";
import {
  type DirtyLogCaps,
  kvm_set_memslot_flags,
  kvm_vm_ioctl_clear_dirty_log,
  kvm_vm_ioctl_get_dirty_log,
  vcpuMemstressTask,
} from "../../mmu/workloads.js";
import { BACKING_PARAM, backingLevelOf, preemptionParam } from "./params.js";
import {
  runHooks,
  type SimParamSpec,
  type SimParams,
  type SimRunOptions,
  type SimScenario,
  type SimScenarioRun,
} from "./types.js";

/**
 * Scenario 5a, timed: tools/testing/selftests/kvm/dirty_log_perf_test.c with its parameters. N vCPUs
 * (memstress threads) each own `-b` bytes of 4K anonymous memory; the host thread times the phases
 * the test prints:
 *   populate (every vCPU's first pass: a fault per page, each allocating the host page),
 *   enable dirty logging, then per iteration: dirty memory (every vCPU's pass; a write-protected page
 *   faults once), KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG (manual-protect mode), and finally disable.
 * The host has no PML, so logging works by write protection (AMD, or Intel with PML off). The
 * kernel's fast page fault path is not modelled: write-protection faults take the slow path under
 * the read mmu_lock. Everything runs the real model functions; the phases are tasks of the host
 * thread's CPU, each started by the one before, so a phase's time is its task's span.
 */

const PAGE = 4096;
/** The selftest's main (host) thread: its phases are tasks named `main:<phase>`. */
export const HOST_THREAD = "main";

/** One phase of a host thread: a name, what it does, and what it noted. */
export interface HostPhase {
  readonly name: string;
  run(): Gen<void>;
}

/**
 * Spawn a host thread's phases as a chain of tasks (all on the host thread's CPU): phase i waits
 * for a store to its own word, which phase i - 1 makes as its last act, so their spans tile the
 * thread's time. Returns the task names in order.
 */
export function spawnHostPhases(
  spawn: ProgramContext["spawn"],
  phases: readonly HostPhase[],
  thread = HOST_THREAD,
): string[] {
  const go = phases.map((p, i) => new Atomic(`${thread}.go[${p.name}]`, i === 0 ? 1 : 0, null));
  const names = phases.map((p) => `${thread}:${p.name}`);
  phases.forEach((p, i) => {
    spawn(
      names[i],
      (function* (): Gen<void> {
        yield {
          kind: "wait",
          obj: go[i].id,
          fn: "<task>",
          step: `wait for the host thread to reach ${p.name}`,
          enabled: () => go[i].v !== 0,
        };
        yield* p.run();
        if (i + 1 < go.length) yield* WRITE_ONCE(go[i + 1], 1);
      })(),
    );
  });
  return names;
}

/** A host-thread phase's span (its task's first step to its end), in ms, or null if it did not finish. */
export function phaseMs(result: SimResult, phase: string, thread = HOST_THREAD): number | null {
  const t = result.perTask.find((x) => x.name === `${thread}:${phase}`);
  return t?.doneNs != null && t.firstStepNs != null ? (t.doneNs - t.firstStepNs) / 1e6 : null;
}

/** The user-space wait of the selftests' host thread for every vCPU to finish an iteration. */
export function* waitForVcpus(completed: readonly Atomic[], it: number): Gen<void> {
  yield {
    kind: "wait",
    obj: completed[0].id,
    objs: completed.slice(1).map((a) => a.id),
    fn: "<task>",
    step: `cpu_relax() until every vCPU finished iteration ${it}`,
    enabled: () => completed.every((a) => a.v >= it),
  };
}

interface DirtyLogConfig {
  readonly kernel: string;
  readonly vcpus: number;
  readonly pagesPerVcpu: number;
  readonly iterations: number;
  readonly slots: number;
  readonly writeFraction: number;
  readonly caps: DirtyLogCaps;
  readonly preemption: "none" | "voluntary" | "full";
  /** Host page level backing guest memory: 1 (4K anonymous), 2 (2M), 3 (1G hugetlbfs). */
  readonly backingLevel: number;
}

/** What the phases note while they run (plain numbers, read by the scenario afterwards). */
interface DirtyLogNotes {
  kvm: Kvm | null;
  /** Leaves mapping 2M or 1G after a phase, for the phases that change them. */
  readonly hugeLeaves: Record<string, number>;
  readonly faults: Record<string, number>;
}

function program(c: DirtyLogConfig, notes: DirtyLogNotes) {
  return ({ spawn }: ProgramContext) => {
    const total = c.vcpus * c.pagesPerVcpu;
    const perSlot = Math.ceil(total / c.slots);
    const kvm = makeVm({
      kernel: c.kernel,
      ptes: 512,
      rootLevel: 4,
      memslotPages: perSlot,
      // A production kernel: no CONFIG_KVM_PROVE_MMU.
      machine: { ...simMachineConfig(c.preemption), proveMmu: false },
      checks: false,
    });
    notes.kvm = kvm;
    kvm_mmu_init_tdp_mmu(kvm);
    const slots: Memslot[] = [kvm.memslots[0]];
    for (let i = 1; i < c.slots; i++) {
      const s: Memslot = {
        id: i,
        as_id: 0,
        base_gfn: i * perSlot,
        npages: Math.min(perSlot, total - i * perSlot),
        flags: 0,
        deleted: false,
      };
      kvm.memslots.push(s);
      slots.push(s);
    }
    // -s anonymous: 4K pages (no THP) that the host allocates on first touch; -s anonymous_hugetlb
    // (2M) or anonymous_hugetlb_1gb: huge pages, which a populate fault maps with one huge SPTE.
    host_memory_backing(kvm, 0, total, {
      resident: false,
      hugepages: c.backingLevel > 1,
      maxLevel: c.backingLevel,
    });
    const persistent = kvm.features.persistentRoots ? 1 : 0;
    const root = makeRoot(kvm, persistent + c.vcpus);
    tdp_mmu_root_set_owner(kvm, root);
    drive(list_add_rcu(root.link, kvm.tdp_mmu_roots));
    ghost_root_published(kvm, root);

    const iteration = new Atomic("iteration", 0, null);
    const quit = new Atomic("host_quit", 0, null);
    const completed: Atomic[] = [];
    for (let v = 0; v < c.vcpus; v++) {
      const done = new Atomic(`vcpu_last_completed_iteration[${v}]`, -1, null);
      completed.push(done);
      spawn(
        `vcpu${v}`,
        vcpuMemstressTask(makeVcpu(kvm, root), {
          start: v * c.pagesPerVcpu,
          pages: c.pagesPerVcpu,
          writeFraction: c.writeFraction,
          iteration,
          completed: done,
          quit,
        }),
      );
    }

    const phase = (name: string, body: () => Gen<void>): HostPhase => ({
      name,
      *run() {
        const before = kvm.stats.faults;
        yield* body();
        notes.faults[name] = kvm.stats.faults - before;
        // Read off the tree, not simulated.
        notes.hugeLeaves[name] = peekLeaves(kvm, root).filter(([, level]) => level > 1).length;
      },
    });
    const phases: HostPhase[] = [
      phase("populate", () => waitForVcpus(completed, 0)),
      phase("enable", function* () {
        for (const s of slots) yield* kvm_set_memslot_flags(kvm, s, true, c.caps);
      }),
    ];
    for (let it = 1; it <= c.iterations; it++) {
      let bitmaps: number[][] = [];
      phases.push(
        phase(`dirty${it}`, function* () {
          yield* WRITE_ONCE(iteration, it);
          yield* waitForVcpus(completed, it);
        }),
        phase(`get${it}`, function* () {
          bitmaps = [];
          for (const s of slots)
            bitmaps.push(yield* kvm_vm_ioctl_get_dirty_log(kvm, s, c.caps.manualProtect));
        }),
      );
      if (c.caps.manualProtect) {
        phases.push(
          phase(`clear${it}`, function* () {
            for (let i = 0; i < slots.length; i++)
              yield* kvm_vm_ioctl_clear_dirty_log(kvm, slots[i], bitmaps[i]);
          }),
        );
      }
    }
    phases.push(
      phase("disable", function* () {
        for (const s of slots) yield* kvm_set_memslot_flags(kvm, s, false, c.caps);
        yield* WRITE_ONCE(quit, 1);
      }),
    );
    spawnHostPhases(spawn, phases);
  };
}

export const DIRTY_LOG_PARAMS: readonly SimParamSpec[] = [
  {
    name: "kernel",
    kind: "enum",
    values: ["v5.18", "v6.4", "v6.6", "v6.9", "v6.15"],
    default: "v6.15",
    doc: "kernel preset (dirty logging itself changed little across these)",
  },
  { name: "vcpus", kind: "int", default: 1, min: 1, max: 512, doc: "-v: vCPUs (one host CPU each)" },
  {
    name: "bytes",
    kind: "size",
    default: 16 * 2 ** 20,
    min: 2 * 2 ** 20,
    max: 16 * 2 ** 30,
    doc:
      "-b: memory per vCPU (the selftest defaults to 1GiB). Every page is an SPTE object and every " +
      "access a few steps, so vcpus x pages x (iterations + 1) is limited to 2^20 page passes (about " +
      "a minute): 64 vCPUs x 16MiB x 2 iterations fits, 1 vCPU x 1GiB does not",
  },
  {
    name: "iterations",
    kind: "int",
    default: 2,
    min: 2,
    max: 20,
    doc: "-i: dirty/get/clear iterations (>= 2)",
  },
  { name: "slots", kind: "int", default: 1, min: 1, max: 64, doc: "-x: memslots the memory is split over" },
  {
    name: "writeFraction",
    kind: "int",
    default: 1,
    min: 1,
    max: 1024,
    doc: "-f: write 1 page in f, read the rest",
  },
  {
    name: "manualProtect",
    kind: "bool",
    default: true,
    doc:
      "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with INITIALLY_SET, the test's default; false is -g (GET " +
      "re-protects, enabling write-protects at once)",
  },
  BACKING_PARAM,
  {
    name: "eagerSplit",
    kind: "bool",
    default: true,
    doc:
      "the eager_page_split module parameter (default Y): huge pages are split to 4K when logging " +
      "is enabled (at the first CLEAR with manualProtect), instead of by each vCPU's write fault",
  },
  preemptionParam("voluntary"),
];

/**
 * Page passes (vCPUs x 4K pages per vCPU x passes over them) a run may simulate: about a minute on
 * one core, the budget of a simulate run. Every access is simulated; no fault is summarised yet.
 */
export const MAX_PAGE_PASSES = 2 ** 20;

/** Read the dirty-log parameters of a point. */
function configOf(params: SimParams): DirtyLogConfig {
  presetByName(String(params.kernel));
  const pagePasses =
    Number(params.vcpus) * Math.floor(Number(params.bytes) / PAGE) * (Number(params.iterations) + 1);
  if (pagePasses > MAX_PAGE_PASSES) {
    throw new RangeError(
      `vcpus x bytes/4KiB x (iterations + 1) = ${pagePasses} page passes; at most ${MAX_PAGE_PASSES} fit a run of about a minute, because dirty-log simulates every access (e.g. vcpus=64 bytes=16MiB iterations=2)`,
    );
  }
  const backingLevel = backingLevelOf(params);
  const hostPage = PAGE * 512 ** (backingLevel - 1);
  if (Number(params.bytes) % hostPage !== 0) {
    throw new RangeError(
      `bytes must be a multiple of the backing page size ${params.backing} (memstress aligns each vCPU's memory to it); got ${params.bytes}`,
    );
  }
  const manual = params.manualProtect !== false;
  return {
    kernel: String(params.kernel),
    vcpus: Number(params.vcpus),
    pagesPerVcpu: Math.max(1, Math.floor(Number(params.bytes) / PAGE)),
    iterations: Number(params.iterations),
    slots: Math.min(Number(params.slots), Number(params.vcpus) * Math.floor(Number(params.bytes) / PAGE)),
    writeFraction: Number(params.writeFraction),
    caps: { manualProtect: manual, initiallySet: manual, eagerSplit: params.eagerSplit !== false },
    preemption: params.preemption as DirtyLogConfig["preemption"],
    backingLevel,
  };
}

/** Run dirty_log_perf_test once. Deterministic. */
export function runDirtyLog(
  params: SimParams,
  costs: Partial<CostModel> = {},
  opts: SimRunOptions = {},
): SimScenarioRun & { readonly phaseFaults: Readonly<Record<string, number>> } {
  const c = configOf(params);
  const notes: DirtyLogNotes = { kvm: null, faults: {}, hugeLeaves: {} };
  const N = c.vcpus;
  const result = simulate(program(c, notes), {
    kernel: kernelView,
    cpus: N + 1,
    preemption: c.preemption,
    // vCPU threads on their own CPUs; the host thread (and anything the kernel spawns) on the last.
    binding: (n) => (n.startsWith("vcpu") ? Number(n.slice(4)) : N),
    costs,
    seed: opts.seed ?? 1,
    ...runHooks(opts),
    timeline: opts.timeline,
  });
  const ms = (phase: string) => phaseMs(result, phase);
  const series = (prefix: string) => {
    const xs: number[] = [];
    for (let it = 1; it <= c.iterations; it++) {
      const v = ms(`${prefix}${it}`);
      if (v !== null) xs.push(v);
    }
    return xs;
  };
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const dirty = series("dirty");
  const get = series("get");
  const clear = c.caps.manualProtect ? series("clear") : [];
  const allDone = result.status === "ok";
  const dirtyFaults: number[] = [];
  for (let it = 1; it <= c.iterations; it++) dirtyFaults.push(notes.faults[`dirty${it}`] ?? 0);
  return {
    label: c.caps.manualProtect ? "manual-protect" : "get-protects",
    kernel: c.kernel,
    params,
    metrics: {
      populateMs: ms("populate"),
      enableMs: ms("enable"),
      dirtyIter1Ms: dirty[0] ?? null,
      dirtyIter2Ms: dirty[1] ?? null,
      dirtyAvgMs: allDone ? sum(dirty) / dirty.length : null,
      getTotalMs: allDone ? sum(get) : null,
      getAvgMs: allDone ? sum(get) / get.length : null,
      clearTotalMs: allDone && c.caps.manualProtect ? sum(clear) : null,
      clearAvgMs: allDone && c.caps.manualProtect ? sum(clear) / clear.length : null,
      disableMs: ms("disable"),
      populateFaults: notes.faults.populate ?? null,
      dirtyIter1Faults: dirtyFaults[0] ?? null,
      dirtyIter2Faults: dirtyFaults[1] ?? null,
      remoteTlbFlushes: notes.kvm?.stats.remoteTlbFlushes ?? 0,
      hugeLeavesAfterPopulate: notes.hugeLeaves.populate ?? null,
      hugeLeavesAfterEnable: notes.hugeLeaves.enable ?? null,
      hugeLeavesAfterDisable: notes.hugeLeaves.disable ?? null,
      totalMs: result.virtualNs / 1e6,
    },
    results: [result],
    phaseFaults: notes.faults,
  };
}

export const dirtyLog: SimScenario = {
  name: "dirty-log",
  thread: null,
  summary:
    "dirty_log_perf_test: populate, enable dirty logging, dirty/get/clear iterations, disable; " +
    "phase times as the selftest prints them (write-protection logging, no PML)",
  params: DIRTY_LOG_PARAMS,
  metrics: [
    { key: "populateMs", unit: "ms", doc: "Populate memory time (every vCPU's first pass)" },
    { key: "enableMs", unit: "ms", doc: "Enabling dirty logging time" },
    { key: "dirtyIter1Ms", unit: "ms", doc: "Iteration 1 dirty memory time" },
    { key: "dirtyIter2Ms", unit: "ms", doc: "Iteration 2 dirty memory time" },
    { key: "dirtyAvgMs", unit: "ms", doc: "dirty memory time, average over the iterations" },
    { key: "getTotalMs", unit: "ms", doc: "Get dirty log over all iterations" },
    { key: "getAvgMs", unit: "ms", doc: "Get dirty log, average per iteration" },
    { key: "clearTotalMs", unit: "ms", doc: "Clear dirty log over all iterations (manual protect only)" },
    { key: "clearAvgMs", unit: "ms", doc: "Clear dirty log, average per iteration" },
    { key: "disableMs", unit: "ms", doc: "Disabling dirty logging time" },
    { key: "populateFaults", unit: "count", doc: "EPT violations handled while populating" },
    {
      key: "dirtyIter1Faults",
      unit: "count",
      doc: "EPT violations in iteration 1 (write-protection faults)",
    },
    { key: "dirtyIter2Faults", unit: "count", doc: "EPT violations in iteration 2" },
    { key: "remoteTlbFlushes", unit: "count", doc: "remote TLB flushes over the run" },
    {
      key: "hugeLeavesAfterPopulate",
      unit: "count",
      doc: "SPTEs mapping 2M or 1G when populating ends (0 with 4K backing)",
    },
    {
      key: "hugeLeavesAfterEnable",
      unit: "count",
      doc: "huge SPTEs left once logging is enabled (eager split leaves none unless INITIALLY_SET defers it)",
    },
    {
      key: "hugeLeavesAfterDisable",
      unit: "count",
      doc: "huge SPTEs once logging is disabled (recovered in place from 6.13; zapped, to refault huge, before)",
    },
    { key: "totalMs", unit: "ms", doc: "end of the run" },
  ],
  headline: "clearAvgMs",
  run(params: SimParams, costs: Partial<CostModel>, opts?: SimRunOptions): SimScenarioRun[] {
    const { phaseFaults: _f, ...run } = runDirtyLog(params, costs, opts);
    return [run];
  },
};
