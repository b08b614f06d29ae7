import type { MemoryModel } from "../kernel/machine.js";
import { runCheckAsync } from "./check.js";
import { resolveScenario, resolveVariant, runConfigFor } from "./resolve.js";
import { SEED_DESIGNS, type SeedDesign } from "./seeds.js";

export interface SeedRow {
  readonly thread: string;
  readonly design: string;
  readonly scenario: string;
  /** Variant name, or "as-merged" for the preset's own behaviour. */
  readonly variant: string;
  readonly kernel: string;
  readonly memoryModel: MemoryModel;
  readonly expected: "safe" | "unsafe";
  readonly verdict: "safe" | "unsafe" | "inconclusive";
  readonly invariant: string | null;
  readonly message: string | null;
  readonly executions: number;
  readonly elapsedMs: number;
  /** Whether exploration was exhaustive (a safe verdict requires it). */
  readonly complete: boolean;
  readonly replay: string | null;
  /** Verdict equals expectation (and, where one is named, the invariant matches). */
  readonly matches: boolean;
  readonly note: string;
}

export interface SeedRunOptions {
  readonly threads?: readonly string[];
  /**
   * Per-design wall-clock budget. None by default: a verdict is decided by exhausting the
   * exploration or by a violation, never by how busy the machine is. A design cut by a budget
   * given here is reported inconclusive.
   */
  readonly timeLimitMs?: number;
  readonly maxExecutions?: number;
  readonly shrink?: boolean;
  readonly onRow?: (row: SeedRow, index: number, total: number) => void;
  /** Ctrl-C: the design being checked stops (its row says interrupted) and no further one starts. */
  readonly signal?: AbortSignal;
  /** Called for every check actually run (a check two threads share runs once). */
  readonly onCheck?: (d: SeedDesign) => void;
}

/** Check one seed design: DPOR to the first violation, or to exhaustion for a safe verdict. */
export async function checkSeedDesign(d: SeedDesign, opts: SeedRunOptions = {}): Promise<SeedRow> {
  const scenario = await resolveScenario(d.scenario);
  const variant = await resolveVariant(d.variant);
  const machineFlags = d.memoryModel === undefined ? {} : { memoryModel: d.memoryModel };
  const config = runConfigFor(scenario, variant, { kernel: d.kernel, machine: machineFlags });
  const t0 = performance.now();
  const out = await runCheckAsync({
    scenario,
    variant,
    variantRef: d.variant,
    config,
    featureFlags: [],
    machineFlags,
    explore: {
      strategy: "dpor",
      stopOnFirstViolation: true,
      timeLimitMs: opts.timeLimitMs,
      maxExecutions: opts.maxExecutions,
      signal: opts.signal,
    },
    shrink: opts.shrink ?? true,
    shrinkBudget: 300,
  });
  const elapsedMs = Math.round(performance.now() - t0);
  const v = out.counterexample?.trace.violation ?? null;
  // A model error is a bug in the model or the variant, never evidence about the design.
  const verdict =
    out.status === "violation" && v?.invariant !== "model-error"
      ? "unsafe"
      : out.status === "ok"
        ? "safe"
        : "inconclusive";
  const invariantOk = invariantMatches(d, v?.invariant ?? null);
  return {
    thread: d.thread,
    design: d.design,
    scenario: d.scenario,
    variant: d.variant ?? "as-merged",
    kernel: d.kernel,
    memoryModel: d.memoryModel ?? "sc",
    expected: d.expected,
    verdict,
    invariant: v?.invariant ?? null,
    message: v?.message ?? null,
    executions: out.explore.executions,
    elapsedMs,
    complete: out.explore.complete,
    replay: out.counterexample?.replay ?? null,
    matches: verdict === d.expected && (verdict !== "unsafe" || invariantOk),
    note: d.note,
  };
}

function invariantMatches(d: SeedDesign, invariant: string | null): boolean {
  return d.invariant === undefined || (invariant !== null && d.invariant.includes(invariant));
}

/** Every seed design (or those of the given threads), in table order. */
export async function runSeeds(opts: SeedRunOptions = {}): Promise<SeedRow[]> {
  const designs = SEED_DESIGNS.filter((d) => !opts.threads || opts.threads.includes(d.thread));
  const rows: SeedRow[] = [];
  // Two threads may debate the same check (a control both use): it is run once.
  const done = new Map<string, SeedRow>();
  for (const d of designs) {
    // Let signal handlers run between designs: a short design finishes without ever yielding.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (opts.signal?.aborted) break;
    const key = `${d.scenario}|${d.kernel}|${d.variant ?? ""}|${d.memoryModel ?? "sc"}`;
    const same = done.get(key);
    if (same === undefined) opts.onCheck?.(d);
    const row =
      same === undefined
        ? await checkSeedDesign(d, opts)
        : {
            ...same,
            thread: d.thread,
            design: d.design,
            expected: d.expected,
            note: d.note,
            matches:
              same.verdict === d.expected &&
              (same.verdict !== "unsafe" || invariantMatches(d, same.invariant)),
          };
    done.set(key, row);
    rows.push(row);
    opts.onRow?.(row, rows.length, designs.length);
  }
  return rows;
}
