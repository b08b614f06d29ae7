import { modelFnNames } from "../mmu/model-fns.js";
import type { CheckOutcome } from "../scenarios/check.js";
import { formatRaceDiagram, formatStepList } from "../trace/race-diagram.js";
import type { TraceDoc } from "../trace/schema.js";

/** Human summary of an exploration: the verdict, whether it was complete, and what cut it. */
export function formatExploreSummary(o: CheckOutcome, label: string): string {
  const e = o.explore;
  const completeness = e.complete
    ? "complete (every interleaving explored)"
    : e.cutBy.length === 1 && e.cutBy[0] === "first-violation"
      ? "stopped at the first violation"
      : `incomplete: cut by ${e.cutBy.join(", ") || "nothing"}`;
  const verdict =
    o.status === "ok" ? "no violation" : o.status === "violation" ? "VIOLATION" : "inconclusive";
  const sampled = e.stats.sampledRuns > 0 ? ` (+${e.stats.sampledRuns} sampled runs)` : "";
  return `${label}: ${verdict}; ${e.strategy}, ${e.executions} executions${sampled}, ${e.steps} steps, ${Math.round(e.elapsedMs)} ms; ${completeness}`;
}

/** Per model function, how many executions reached it; and which model functions none reached. */
export function formatCoverage(cov: Readonly<Record<string, number>>, executions: number): string {
  const names = Object.keys(cov).sort();
  const lines = [`coverage: ${names.length} model functions reached, over ${executions} executions`];
  const w = Math.max(...names.map((n) => n.length), 8);
  for (const n of names) lines.push(`  ${n.padEnd(w)} ${String(cov[n]).padStart(9)}`);
  const never = modelFnNames().filter((n) => cov[n] === undefined);
  lines.push(`  not reached: ${never.length} model functions (the JSON lists them)`);
  return lines.join("\n");
}

/** The counterexample the way a kernel developer reads it: diagram, steps, invariant, replay. */
export function formatCounterexample(
  trace: TraceDoc,
  replay: string,
  shrunk: CheckOutcome["counterexample"] extends infer C ? (C extends { shrunk: infer S } ? S : null) : null,
  full: boolean,
): string {
  const v = trace.violation;
  const parts: string[] = [];
  if (v?.invariant === "user-error") {
    // The user's own code threw: where, and the schedule that gets there; no race to show.
    const at =
      v.step < 0 ? "in the scenario's setup" : `at step ${v.step}, in task ${v.taskName}, in ${v.fn}()`;
    parts.push(v.message, `  ${at}`);
    if (typeof v.details.stack === "string") parts.push("", "stack:", v.details.stack);
    if (full) parts.push("", "steps:", formatStepList(trace));
    parts.push("", `replay: ${replay}`, `  tdplab replay '${replay}'`);
    return parts.join("\n");
  }
  if (v) parts.push(`invariant: ${v.invariant}`, `  ${v.message}`);
  if (shrunk) {
    parts.push(
      `shrunk: ${shrunk.from.steps} steps / ${shrunk.from.preemptions} preemptions -> ${shrunk.to.steps} steps / ${shrunk.to.preemptions} preemptions${shrunk.minimal ? " (fewest preemptions proven)" : ""}`,
    );
  }
  parts.push("", "race diagram:", formatRaceDiagram(trace));
  if (full) parts.push("", "steps:", formatStepList(trace));
  if (v && Object.keys(v.details).length > 0)
    parts.push("", "objects and values:", JSON.stringify(v.details, null, 2));
  parts.push("", `replay: ${replay}`, `  tdplab replay '${replay}'`);
  return parts.join("\n");
}
