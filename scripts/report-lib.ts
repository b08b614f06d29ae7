import { formatMetric, metricOrder, simTable } from "../src/cli/sim-table.js";
import { writeLinePlot } from "../src/plot/index.js";
import { simPlotSpec } from "../src/plot/sim-plot.js";
import { planSimulation, SimParamError, type SimPlan } from "../src/scenarios/sim/params.js";
import { findSimScenario } from "../src/scenarios/sim/registry.js";
import { runPlan, type SimRecord } from "../src/scenarios/sim/run-plan.js";
import type { SimScenario } from "../src/scenarios/sim/types.js";

/**
 * The machinery of `npm run report`: a study is one `tdplab simulate` command (scenario, --set,
 * --sweep, --kernel) run through the registry, shown as a Markdown table and an SVG plot, and read
 * in plain words by a function of its numbers. A study whose scenario, parameter or metric is not
 * in this build says so instead of failing, so the report runs with whatever scenarios exist.
 */

export interface Study {
  /** File-name stem of its plot (docs/plots/<id>.svg). */
  readonly id: string;
  readonly scenario: string;
  readonly set?: readonly string[];
  readonly sweep?: string;
  readonly kernel?: string;
  /** Metric on the plot's y axis (default: the scenario's headline). */
  readonly metric?: string;
  /** Metrics in the table (default: all). */
  readonly columns?: readonly string[];
  /** Why this study answers (part of) the question: one or two sentences. */
  readonly why: string;
  /** The plain reading, from the numbers. Throw Missing when a number it needs is absent. */
  readonly read: (r: StudyResult) => string;
}

export interface Question {
  readonly id: string;
  readonly title: string;
  /** The seed thread(s) it comes from, e.g. "000". */
  readonly thread: string | null;
  readonly question: string;
  readonly studies: readonly Study[];
  /** What the model cannot answer (yet), and why; null when nothing is missing. */
  readonly limits: (available: boolean) => string | null;
  /** A reading across the studies (null entries: studies that did not run). Throw Missing to skip. */
  readonly conclude?: (results: readonly (StudyResult | null)[]) => string;
}

/** A number a reading needed was not produced. */
export class Missing extends Error {
  override name = "Missing";
}

/** The numbers of one finished study, addressed by run label, swept value and metric. */
export class StudyResult {
  constructor(
    readonly plan: SimPlan,
    readonly records: readonly SimRecord[],
  ) {}

  get labels(): string[] {
    return [...new Set(this.records.map((r) => r.run.label))];
  }

  /** Swept values as written (64TiB, full), in sweep order; [""] without a sweep. */
  get points(): string[] {
    return this.plan.points.map((p) => p.label ?? "");
  }

  /** The metric of run `label` at sweep value `at` ("" without a sweep), or null. */
  maybe(label: string, at: string, metric: string): number | null {
    const i = this.plan.points.findIndex((p) => (p.label ?? "") === at);
    const r = this.records.find((x) => x.point === i && x.run.label === label);
    const v = r?.run.metrics[metric];
    return v === undefined || v === null || !Number.isFinite(v) ? null : v;
  }

  /** Like maybe(), but a missing number stops the reading (Missing). */
  get(label: string, at: string, metric: string): number {
    const v = this.maybe(label, at, metric);
    if (v === null) throw new Missing(`no ${metric} for run ${label}${at ? ` at ${at}` : ""}`);
    return v;
  }

  /** One run label's metric over the sweep. */
  series(label: string, metric: string): (number | null)[] {
    return this.points.map((p) => this.maybe(label, p, metric));
  }
}

/** Milliseconds for people: 929.7 s, 12.6 ms, 66 ns. */
export function ms(v: number): string {
  const a = Math.abs(v);
  if (a >= 60_000) return `${(v / 1000).toFixed(0)} s (${(v / 60_000).toFixed(1)} min)`;
  if (a >= 1000) return `${Number((v / 1000).toPrecision(4))} s`;
  if (a >= 1) return `${Number(v.toPrecision(4))} ms`;
  if (a >= 1e-3) return `${Number((v * 1000).toPrecision(4))} µs`;
  return `${Number((v * 1e6).toPrecision(4))} ns`;
}

/** A ratio for people: "12.5×". */
export function times(a: number, b: number): string {
  return `${Number((a / b).toPrecision(3))}×`;
}

export function commandLine(s: Study): string {
  const parts = ["tdplab simulate", s.scenario];
  if (s.kernel) parts.push(`--kernel ${s.kernel}`);
  for (const x of s.set ?? []) parts.push(`--set ${x}`);
  if (s.sweep) parts.push(`--sweep ${s.sweep}`);
  return parts.join(" ");
}

export type StudyOutcome =
  | { readonly kind: "ran"; readonly result: StudyResult; readonly plot: string; readonly wallMs: number }
  | { readonly kind: "unavailable"; readonly why: string };

/** Run a study through the registry; write its plot to `${plotDir}/${id}.svg`. */
export async function runStudy(
  s: Study,
  plotDir: string,
  registry: readonly SimScenario[],
): Promise<StudyOutcome> {
  const scenario = findSimScenario(s.scenario, registry);
  if (scenario === undefined) {
    return { kind: "unavailable", why: `the scenario \`${s.scenario}\` is not in this build's registry` };
  }
  let plan: SimPlan;
  try {
    plan = planSimulation(scenario, { set: s.set, sweep: s.sweep ? [s.sweep] : [], kernel: s.kernel });
  } catch (e) {
    if (e instanceof SimParamError)
      return { kind: "unavailable", why: `\`${commandLine(s)}\` is refused: ${e.message}` };
    throw e;
  }
  const metric = s.metric ?? scenario.headline;
  const known = scenario.metrics.map((m) => m.key);
  for (const m of [metric, ...(s.columns ?? [])]) {
    if (!known.includes(m)) return { kind: "unavailable", why: `\`${s.scenario}\` has no metric \`${m}\`` };
  }
  const t0 = performance.now();
  const outcome = await runPlan(plan);
  const wallMs = performance.now() - t0;
  const plot = `${plotDir}/${s.id}.svg`;
  writeLinePlot(plot, simPlotSpec(plan, outcome.records, metric));
  return { kind: "ran", result: new StudyResult(plan, outcome.records), plot, wallMs };
}

/** The Markdown of one study: command, table, plot and reading. */
export function studyMarkdown(s: Study, o: StudyOutcome, plotRef: string): string {
  const lines = [`**\`${commandLine(s)}\`** — ${s.why}`, ""];
  if (o.kind === "unavailable") {
    lines.push(`*Not run:* ${o.why}.`, "");
    return lines.join("\n");
  }
  const scenario = o.result.plan.scenario;
  const columns = s.columns ?? metricOrder(scenario);
  lines.push(simTable(o.result.plan, o.result.records, { markdown: true, metrics: columns }), "");
  const units = scenario.metrics
    .filter((m) => columns.includes(m.key))
    .map((m) => `${m.key} (${m.unit}): ${m.doc}`)
    .join("; ");
  lines.push(`<sub>${units}</sub>`, "");
  lines.push(`![${s.id}](${plotRef})`, "");
  let reading: string;
  try {
    reading = s.read(o.result);
  } catch (e) {
    if (!(e instanceof Missing)) throw e;
    reading = `No reading: ${e.message}.`;
  }
  lines.push(`**Reading.** ${reading}`, "");
  return lines.join("\n");
}

export { formatMetric };
