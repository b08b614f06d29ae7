import type { Gen } from "../../engine/op.js";
import { type CostModel, FITTED_TO, withCosts } from "../../engine/sim/cost-model.js";
import { simulate } from "../../engine/sim/simulator.js";
import { Atomic, READ_ONCE } from "../../kernel/atomic.js";
import { synchronize_rcu } from "../../kernel/rcu.js";
import { kernelView } from "../../kernel/sim-view.js";
import { kvm_flush_remote_tlbs } from "../../mmu/tlb.js";
import { defunctRootZap } from "./defunct-root-zap.js";
import { runDirtyLog } from "./dirty-log.js";
import { buildPopulatedVm } from "./populated-vm.js";
import { teardownWait } from "./teardown-wait.js";

/**
 * Calibration shown, not claimed: every figure of docs/published-figures.md beside what the
 * simulator makes of it. A figure a price was fitted to (cost-model.ts FITTED_TO) is a
 * *calibration* figure: agreeing with it only shows the fit survived the model's changes. Every
 * other measured figure is a *validation* figure: agreeing with it is evidence. Priors (a range
 * a price was kept inside, no measurement of what the model computes) and estimates under debate
 * are listed without a ratio. `npm run report` prints the table and writes docs/calibration.md.
 */

export type FigureRole = "calibration" | "validation" | "prior" | "none";

/** What the publication states, in nanoseconds. */
export type Published =
  | { readonly kind: "point"; readonly ns: number }
  | { readonly kind: "at-least"; readonly ns: number }
  | { readonly kind: "at-most"; readonly ns: number }
  | { readonly kind: "range"; readonly lo: number; readonly hi: number };

export interface Figure {
  /** Its id in docs/published-figures.md. */
  readonly id: string;
  /** Which of the figure's numbers, when it states several. */
  readonly part: string;
  readonly published: Published | null;
  /** "prior" and "none" figures say so; a measured one is calibration or validation by FITTED_TO. */
  readonly declared: "measured" | "prior" | "none";
  /** How the simulator's value is obtained (the `tdplab simulate` run, or the price). */
  readonly how: string;
  /** The simulator's value in ns, or null when there is none to give. */
  readonly measure: ((costs: Partial<CostModel>) => number) | null;
}

export interface CalibrationRow {
  readonly id: string;
  readonly part: string;
  readonly role: FigureRole;
  readonly published: Published | null;
  readonly how: string;
  readonly simulatedNs: number | null;
  /** simulated / published (for a bound or range: / the bound it is compared with), or null. */
  readonly ratio: number | null;
  /** Whether the simulated value satisfies what was published (a bound, a range, or within 2x of a point). */
  readonly agrees: boolean | null;
  /** Prices fitted to this figure. */
  readonly fittedPrices: readonly string[];
}

const GiB = 2 ** 30;
const TiB = 2 ** 40;
const MS = 1e6;
const US = 1e3;
const S = 1e9;

/** Prices fitted to figure `id`. */
export function pricesFittedTo(id: string): string[] {
  return Object.entries(FITTED_TO)
    .filter(([, ids]) => ids.includes(id))
    .map(([k]) => k);
}

/** Results shared by several figures (the 64 TiB zaps take seconds each). */
function memo(f: (costs: Partial<CostModel>) => number): (costs: Partial<CostModel>) => number {
  const seen = new Map<string, number>();
  return (costs) => {
    const k = JSON.stringify(costs);
    let v = seen.get(k);
    if (v === undefined) {
      v = f(costs);
      seen.set(k, v);
    }
    return v;
  };
}

/** defunct-root-zap's vCPU block time on `kernel` at `guestSize`, and the command that shows it. */
function zapBlocked(kernel: "v5.17" | "v5.18", guestSize: number, size: string) {
  return {
    how: `defunct-root-zap --kernel ${kernel} --set guestSize=${size}: vcpuBlocked`,
    measure: (c: Partial<CostModel>) => defunctRootZap({ kernel, guestSize }, c).vcpuBlockedNs,
  };
}

const syncZap64TiB = zapBlocked("v5.17", 64 * TiB, "64TiB");
const syncZap64TiBNs = memo(syncZap64TiB.measure);
const dirtyLog1Vcpu = (c: Partial<CostModel>) =>
  runDirtyLog(
    {
      kernel: "v6.15",
      vcpus: 1,
      bytes: 16 * 2 ** 20,
      iterations: 2,
      slots: 1,
      writeFraction: 1,
      manualProtect: true,
      preemption: "voluntary",
    },
    c,
  );
/** Per-fault times of dirty_log_perf_test with one vCPU and 16 MiB: populate, and iteration 2's write-protection faults. */
const dirtyLogPerFault = (() => {
  const seen = new Map<string, { populate: number; wp: number }>();
  return (c: Partial<CostModel>) => {
    const k = JSON.stringify(c);
    let v = seen.get(k);
    if (v === undefined) {
      const m = dirtyLog1Vcpu(c).metrics;
      v = {
        populate: ((m.populateMs as number) * MS) / (m.populateFaults as number),
        wp: ((m.dirtyIter2Ms as number) * MS) / (m.dirtyIter2Faults as number),
      };
      seen.set(k, v);
    }
    return v;
  };
})();

/** A 2 MiB VM with `running` vCPUs in guest mode: the machine a primitive is timed on (setup, unpriced). */
function smallVm(running: number) {
  return buildPopulatedVm({
    kernel: "v6.4",
    preemption: "none",
    rootLevel: 4,
    ptesPerTable: 512,
    guestSize: 2 ** 21,
    materialise: false,
    runningVcpus: running,
  });
}

/** One kvm_flush_remote_tlbs() with `running` vCPUs in guest mode: the flusher's busy time. */
function remoteFlushNs(costs: Partial<CostModel>, running: number): number {
  const r = simulate(
    ({ spawn }) => {
      const vm = smallVm(running);
      const start = new Atomic("start");
      spawn(
        "flusher",
        (function* (): Gen<void> {
          // Code before a task's first access runs at spawn, unpriced: start with one.
          yield* READ_ONCE(start);
          yield* kvm_flush_remote_tlbs(vm.kvm);
        })(),
      );
    },
    { kernel: kernelView, cpus: 1, preemption: "none", costs },
  );
  const t = r.perTask.find((x) => x.name === "flusher")!;
  return t.busyNs - withCosts(costs).readNs;
}

/** The mean of `n` back-to-back synchronize_rcu() waits. */
function meanGracePeriodNs(costs: Partial<CostModel>, n: number): number {
  const r = simulate(
    ({ spawn }) => {
      smallVm(0);
      spawn(
        "waiter",
        (function* (): Gen<void> {
          for (let i = 0; i < n; i++) yield* synchronize_rcu();
        })(),
      );
    },
    { kernel: kernelView, cpus: 1, preemption: "none", costs, seed: 16 },
  );
  return r.perTask.find((t) => t.name === "waiter")!.blockedNs / n;
}

/** A teardown-wait run without forced quiescent states: the first stall warning's delay. */
function stallDelayNs(costs: Partial<CostModel>): number {
  const o = teardownWait(
    { guestSize: 4 * TiB, rootLevel: 4, preemption: "none" },
    { ...costs, rcuUrgentQsNs: 0 },
  );
  const s = o.result.rcuStalls[0];
  if (s === undefined)
    throw new Error("calibration: the teardown-wait run without forcing printed no stall warning");
  return s.atNs - s.gpStartNs;
}

export const FIGURES: readonly Figure[] = [
  {
    id: "A1",
    part: "synchronous zap (5.17), 64 TiB",
    published: { kind: "at-least", ns: 900 * S },
    declared: "measured",
    how: syncZap64TiB.how,
    measure: syncZap64TiBNs,
  },
  {
    id: "A1",
    part: "zap on the worker (5.18), 64 TiB",
    published: { kind: "at-most", ns: 100 * MS },
    declared: "measured",
    ...zapBlocked("v5.18", 64 * TiB, "64TiB"),
  },
  {
    id: "A2",
    part: "one top-level entry (512 GiB of 4K SPTEs), 4-level root",
    published: { kind: "point", ns: 7 * S },
    declared: "measured",
    ...zapBlocked("v5.17", 512 * GiB, "512GiB"),
  },
  {
    id: "A4",
    part: "64 TiB = 128 top-level entries x 7 s",
    published: { kind: "point", ns: 896 * S },
    declared: "measured",
    how: "the A1 synchronous run",
    measure: syncZap64TiBNs,
  },
  {
    id: "A5",
    part: "RCU CPU stall warning delay",
    published: { kind: "point", ns: 21 * S },
    declared: "measured",
    how: "teardown-wait --set guestSize=4TiB --set rootLevel=4 --set rcuUrgentQsNs=0, none/idle: first stall warning after its grace period began",
    measure: stallDelayNs,
  },
  {
    id: "A10",
    part: "teardown's wait for mmu_lock behind the worker",
    published: null,
    declared: "none",
    how: "an estimate the thread disputes: seed-answers Q1 answers it",
    measure: null,
  },
  {
    id: "E1",
    part: "remote TLB flush, 64 vCPUs in guest mode",
    published: { kind: "at-most", ns: 73 * US },
    declared: "measured",
    how: "one kvm_flush_remote_tlbs() with 64 running vCPUs: the flusher's time",
    measure: (c) => remoteFlushNs(c, 64),
  },
  {
    id: "E2",
    part: "TLB-shootdown IPI round trip",
    published: { kind: "range", lo: 1 * US, hi: 3 * US },
    declared: "prior",
    how: "bounds tlbFlushNs and tlbFlushLocalNs (assumptions); no run computes an IPI",
    measure: null,
  },
  {
    id: "E3",
    part: "ordinary RCU grace period",
    published: { kind: "range", lo: 3 * MS, hi: 30 * MS },
    declared: "measured",
    how: "mean of 100 back-to-back synchronize_rcu() waits",
    measure: (c) => meanGracePeriodNs(c, 100),
  },
  {
    id: "E4",
    part: "LOCK-prefixed RMW",
    published: null,
    declared: "prior",
    how: "bounds rmwNs and the lock prices (assumptions); no primary figure",
    measure: null,
  },
  {
    id: "E5",
    part: "page-table page allocation (GFP_NOWAIT)",
    published: { kind: "at-most", ns: 60 * US },
    declared: "measured",
    how: "the price ptAllocNs",
    measure: (c) => withCosts(c).ptAllocNs,
  },
  {
    id: "E6",
    part: "populate fault with host allocation, per 4K page",
    published: { kind: "range", lo: 20 * US, hi: 24 * US },
    declared: "measured",
    how: "dirty-log --set vcpus=1 --set bytes=16MiB: populate time / populate faults",
    measure: (c) => dirtyLogPerFault(c).populate,
  },
  {
    id: "E6",
    part: "lockless write-protection fault",
    published: { kind: "point", ns: 1.2 * US },
    declared: "measured",
    how: "dirty-log --set vcpus=1 --set bytes=16MiB: iteration 2 time / its faults (guest access included)",
    measure: (c) => dirtyLogPerFault(c).wp,
  },
];

/** Ratio and agreement of a simulated value with a publication. */
export function compare(p: Published, ns: number): { ratio: number; agrees: boolean } {
  switch (p.kind) {
    case "point": {
      const ratio = ns / p.ns;
      return { ratio, agrees: ratio >= 0.5 && ratio <= 2 };
    }
    case "at-least":
      return { ratio: ns / p.ns, agrees: ns >= p.ns };
    case "at-most":
      return { ratio: ns / p.ns, agrees: ns <= p.ns };
    case "range": {
      if (ns < p.lo) return { ratio: ns / p.lo, agrees: false };
      if (ns > p.hi) return { ratio: ns / p.hi, agrees: false };
      return { ratio: 1, agrees: true };
    }
  }
}

/** The role of a figure: calibration exactly when a price was fitted to it. */
export function roleOf(f: Figure): FigureRole {
  if (f.declared !== "measured") return f.declared;
  return pricesFittedTo(f.id).length > 0 ? "calibration" : "validation";
}

/** Run every measurement with `costs` on top of the defaults; `onFigure` reports progress. */
export function calibrationTable(
  costs: Partial<CostModel> = {},
  onFigure?: (f: Figure) => void,
): CalibrationRow[] {
  return FIGURES.map((f) => {
    onFigure?.(f);
    const simulatedNs = f.measure === null ? null : f.measure(costs);
    const cmp = simulatedNs === null || f.published === null ? null : compare(f.published, simulatedNs);
    return {
      id: f.id,
      part: f.part,
      role: roleOf(f),
      published: f.published,
      how: f.how,
      simulatedNs,
      ratio: cmp?.ratio ?? null,
      agrees: cmp?.agrees ?? null,
      fittedPrices: pricesFittedTo(f.id),
    };
  });
}
