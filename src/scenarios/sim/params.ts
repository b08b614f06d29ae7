import { type CostModel, DEFAULT_COSTS } from "../../engine/sim/cost-model.js";
import { PRESETS } from "../../mmu/presets.js";
import type { SimMachineSettings, SimParamSpec, SimParams, SimParamValue, SimScenario } from "./types.js";

/**
 * Parsing and checking of `tdplab simulate` settings (--set key=value, --sweep key=a,b,c, --kernel V)
 * against a scenario's declared parameters and the cost model. Every refusal is a SimParamError whose
 * message names the flag, the key, the bad value and what is allowed; the CLI turns it into exit 2.
 * The report and the benchmark use the same functions, so a setting means the same thing everywhere.
 */

export class SimParamError extends Error {
  override name = "SimParamError";
}

/** Binary size units, largest first. */
const SIZE_UNITS: readonly (readonly [string, number])[] = [
  ["PiB", 2 ** 50],
  ["TiB", 2 ** 40],
  ["GiB", 2 ** 30],
  ["MiB", 2 ** 20],
  ["KiB", 2 ** 10],
  ["B", 1],
];
const SIZE_HELP = "a size in bytes, with an optional binary suffix B, KiB, MiB, GiB, TiB or PiB (e.g. 64TiB)";

/** Bytes of a size written as `64TiB`, `1.5GiB`, `4096` or `4096B`; null when it is not one. */
export function parseSize(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(text.trim().replaceAll("_", ""));
  if (m === null) return null;
  const unit = m[2] === "" ? 1 : SIZE_UNITS.find(([u]) => u.toLowerCase() === m[2].toLowerCase())?.[1];
  if (unit === undefined) return null;
  const bytes = Number(m[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** A byte count in the largest binary unit that divides it exactly: 70368744177664 → "64TiB". */
export function formatSize(bytes: number): string {
  for (const [u, n] of SIZE_UNITS) if (bytes !== 0 && bytes % n === 0) return `${bytes / n}${u}`;
  return `${bytes}B`;
}

/** A byte count for people: three significant digits in the largest unit that fits ("1.5GiB"). */
export function humanSize(bytes: number): string {
  for (const [u, n] of SIZE_UNITS) {
    if (Math.abs(bytes) >= n) return `${Number((bytes / n).toPrecision(3))}${u}`;
  }
  return `${bytes}B`;
}

/** Cost-model entries settable like parameters: every plain number, and the grace-period range. */
export type CostKey = { [K in keyof CostModel]: CostModel[K] extends number ? K : never }[keyof CostModel];
export const COST_KEYS: readonly CostKey[] = (Object.keys(DEFAULT_COSTS) as (keyof CostModel)[]).filter(
  (k): k is CostKey => typeof DEFAULT_COSTS[k] === "number",
);
const GP_KEY = "rcuGracePeriodNs";
const ALL_COST_KEYS: readonly string[] = [...COST_KEYS, GP_KEY];

const DURATION_UNITS: Readonly<Record<string, number>> = { "": 1, ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9 };
const DURATION_HELP = "a duration >= 0 in ns, or with a unit ns, us, ms, s (e.g. 73us)";

/** Nanoseconds of `73000`, `73us`, `1.5ms`; null when it is not a duration. */
export function parseDuration(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*(ns|us|µs|ms|s)?$/i.exec(text.trim().replaceAll("_", ""));
  if (m === null) return null;
  const ns = Number(m[1]) * DURATION_UNITS[(m[2] ?? "").toLowerCase()];
  return Number.isFinite(ns) ? Math.round(ns * 1000) / 1000 : null;
}

/** Nanoseconds in the largest unit that divides them exactly: 73000 → "73us", 3e6 → "3ms", 0 → "0". */
export function formatDuration(ns: number): string {
  if (ns === 0) return "0";
  for (const [u, n] of [
    ["s", 1e9],
    ["ms", 1e6],
    ["us", 1e3],
  ] as const) {
    if (Number.isInteger(ns / n)) return `${ns / n}${u}`;
  }
  return `${ns}ns`;
}

export function isCostKey(key: string): boolean {
  return ALL_COST_KEYS.includes(key);
}

/** What a parameter spec accepts, in words. */
export function allowedText(spec: SimParamSpec): string {
  const range = (f: (v: number) => string) =>
    spec.min !== undefined && spec.max !== undefined
      ? ` in ${f(spec.min)}..${f(spec.max)}`
      : spec.min !== undefined
        ? ` >= ${f(spec.min)}`
        : spec.max !== undefined
          ? ` <= ${f(spec.max)}`
          : "";
  switch (spec.kind) {
    case "size":
      return `${SIZE_HELP}${range(formatSize)}`;
    case "int":
      return `an integer${range(String)}`;
    case "number":
      return `a number${range(String)}`;
    case "enum":
      return `one of ${(spec.values ?? []).join(", ")}`;
    case "bool":
      return "true or false";
  }
}

function parseNumberText(text: string): number | null {
  const t = text.trim().replaceAll("_", "");
  if (t === "" || !/^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(t)) return null;
  const v = Number(t);
  return Number.isFinite(v) ? v : null;
}

function inRange(spec: SimParamSpec, v: number): boolean {
  return (spec.min === undefined || v >= spec.min) && (spec.max === undefined || v <= spec.max);
}

/** Parse one value of a declared parameter; throws a SimParamError naming flag, key, value and what is allowed. */
export function parseParamValue(flag: string, spec: SimParamSpec, raw: string): SimParamValue {
  const bad = (): never => {
    throw new SimParamError(`${flag}: ${spec.name} must be ${allowedText(spec)}; got '${raw}'`);
  };
  switch (spec.kind) {
    case "size": {
      const v = parseSize(raw);
      if (v === null && /^\d+(\.\d+)?\s*[kmgtp]b$/i.test(raw.trim())) {
        throw new SimParamError(
          `${flag}: ${spec.name} takes binary units (KiB, MiB, GiB, TiB, PiB), not '${raw}'; e.g. 64TiB`,
        );
      }
      return v !== null && inRange(spec, v) ? v : bad();
    }
    case "int": {
      const v = parseNumberText(raw);
      return v !== null && Number.isSafeInteger(v) && inRange(spec, v) ? v : bad();
    }
    case "number": {
      const v = parseNumberText(raw);
      return v !== null && inRange(spec, v) ? v : bad();
    }
    case "enum":
      return (spec.values ?? []).includes(raw.trim()) ? raw.trim() : bad();
    case "bool": {
      const t = raw.trim().toLowerCase();
      if (["true", "1", "yes", "on"].includes(t)) return true;
      if (["false", "0", "no", "off"].includes(t)) return false;
      return bad();
    }
  }
}

/** Parse one cost-model value (nanoseconds; the grace period also takes a range `min..max`). */
export function parseCostValue(
  flag: string,
  key: string,
  raw: string,
): CostModel[CostKey] | CostModel["rcuGracePeriodNs"] {
  if (key === GP_KEY) {
    const [a, b, ...rest] = raw.split("..");
    const min = parseDuration(a);
    const max = b === undefined ? min : parseDuration(b);
    if (rest.length > 0 || min === null || max === null || max < min) {
      throw new SimParamError(
        `${flag}: ${GP_KEY} must be ${DURATION_HELP}, or a range min..max (e.g. 3ms..30ms); got '${raw}'`,
      );
    }
    return { min, max };
  }
  const v = parseDuration(raw);
  if (v === null || (key === "tickNs" && v === 0)) {
    throw new SimParamError(
      `${flag}: ${key} must be ${key === "tickNs" ? "a duration > 0" : DURATION_HELP}; got '${raw}'`,
    );
  }
  return v;
}

/** Split `key=value`; the message lists the keys the scenario accepts. */
export function splitAssignment(flag: string, text: string, scenario: SimScenario): [string, string] {
  const i = text.indexOf("=");
  if (i <= 0) throw new SimParamError(`${flag} takes key=value, not '${text}'; ${keysText(scenario)}`);
  return [text.slice(0, i).trim(), text.slice(i + 1)];
}

function keysText(scenario: SimScenario): string {
  const names = scenario.params.map((p) => p.name);
  return `parameters of ${scenario.name}: ${names.length > 0 ? names.join(", ") : "(none)"}; machine settings: ${MACHINE_PARAMS.map((p) => p.name).join(", ")}; cost-model keys: ${ALL_COST_KEYS.join(", ")}`;
}

/** The `preemption` parameter scenarios declare: CONFIG_PREEMPT_NONE, _VOLUNTARY or full. */
export function preemptionParam(dflt: "none" | "voluntary" | "full"): SimParamSpec {
  return {
    name: "preemption",
    kind: "enum",
    values: ["none", "voluntary", "full"],
    default: dflt,
    doc: "kernel preemption model",
  };
}

/**
 * The `backing` parameter scenarios declare: the host page size behind guest memory (4K anonymous
 * memory, 2M THP or hugetlbfs, 1G hugetlbfs), so the largest SPTE KVM may map it with.
 */
export const BACKING_PARAM: SimParamSpec = {
  name: "backing",
  kind: "enum",
  values: ["4K", "2M", "1G"],
  default: "4K",
  doc: "host page size backing guest memory (4K anonymous, 2M THP/hugetlbfs, 1G hugetlbfs): the largest SPTE that maps it",
};

/** The page-table level of a point's `backing`: 1 (4K), 2 (2M) or 3 (1G). */
export function backingLevelOf(params: SimParams): 1 | 2 | 3 {
  return params.backing === "1G" ? 3 : params.backing === "2M" ? 2 : 1;
}

/**
 * Settings of the simulated machine that every scenario takes, on top of its own parameters (a
 * scenario parameter of the same name wins). A run gets them as SimRunOptions.machine (runPlan).
 */
export const MACHINE_PARAMS: readonly SimParamSpec[] = [
  {
    name: "rcuCallbacks",
    kind: "enum",
    default: "softirq",
    values: ["softirq", "rcuoc"],
    doc: "RCU callbacks run as RCU_SOFTIRQ on the CPU that queued them, or in rcuoc kthreads (rcu_nocbs=)",
  },
  {
    name: "wakePlacement",
    kind: "enum",
    default: "select_idle_sibling",
    values: ["select_idle_sibling", "first-idle"],
    doc: "where a woken free task runs: select_idle_sibling(), or whichever idle CPU looks first",
  },
  { name: "llcCpus", kind: "int", default: 0, min: 0, doc: "CPUs per last-level cache (0: one LLC)" },
];

function specOf(scenario: SimScenario, key: string): SimParamSpec | undefined {
  return scenario.params.find((p) => p.name === key) ?? MACHINE_PARAMS.find((p) => p.name === key);
}

/** The machine settings (MACHINE_PARAMS) a parameter point sets, for SimRunOptions.machine. */
export function machineSettingsOf(scenario: SimScenario, params: SimParams): SimMachineSettings {
  const out: Record<string, SimParamValue> = {};
  for (const m of MACHINE_PARAMS) {
    if (params[m.name] !== undefined && !scenario.params.some((p) => p.name === m.name))
      out[m.name] = params[m.name];
  }
  return out as SimMachineSettings;
}

/** A value of `key` for scenario: a parameter or a cost-model entry. */
export type SettingValue = SimParamValue | CostModel["rcuGracePeriodNs"];

function parseSetting(flag: string, scenario: SimScenario, key: string, raw: string): SettingValue {
  const spec = specOf(scenario, key);
  if (spec !== undefined) return parseParamValue(flag, spec, raw);
  if (isCostKey(key)) return parseCostValue(flag, key, raw);
  throw new SimParamError(`${flag}: unknown key '${key}'; ${keysText(scenario)}`);
}

/** Text of a value as a user would write it back (64TiB, 73us, 3ms..30ms, true). */
export function formatSetting(scenario: SimScenario, key: string, v: SettingValue): string {
  if (typeof v === "object") {
    return v.min === v.max ? formatDuration(v.min) : `${formatDuration(v.min)}..${formatDuration(v.max)}`;
  }
  if (specOf(scenario, key)?.kind === "size" && typeof v === "number") return formatSize(v);
  if (specOf(scenario, key) === undefined && isCostKey(key) && typeof v === "number")
    return formatDuration(v);
  return String(v);
}

/**
 * Expand one --sweep value list. `a,b,c` lists values; for int and size parameters `a..b` doubles from
 * a up to b (1..128 → 1,2,4,...,128; 1GiB..64TiB → 1GiB,2GiB,...,64TiB; b is kept when not reached exactly).
 */
function expandSweep(flag: string, scenario: SimScenario, key: string, text: string): SettingValue[] {
  const spec = specOf(scenario, key);
  const items = text.split(",").map((s) => s.trim());
  if (items.some((s) => s === "")) throw new SimParamError(`${flag}: empty value in '${key}=${text}'`);
  const out: SettingValue[] = [];
  for (const item of items) {
    const range = item.split("..");
    if (range.length === 2 && (spec?.kind === "int" || spec?.kind === "size")) {
      const lo = parseParamValue(flag, spec, range[0]) as number;
      const hi = parseParamValue(flag, spec, range[1]) as number;
      if (lo <= 0 || hi < lo) {
        throw new SimParamError(
          `${flag}: range '${item}' of ${key} must go up from a value > 0 (a..b doubles a up to b)`,
        );
      }
      for (let v = lo; v < hi; v *= 2) out.push(v);
      out.push(hi);
    } else out.push(parseSetting(flag, scenario, key, item));
  }
  if (out.length > 10_000) throw new SimParamError(`${flag}: ${out.length} values; at most 10000`);
  return out;
}

export interface SimSweep {
  readonly key: string;
  readonly values: readonly SettingValue[];
}

/** One parameter point: scenario parameters (all present) and cost-model overrides. */
export interface SimPoint {
  readonly params: SimParams;
  readonly costs: Partial<CostModel>;
  /** The swept key's value at this point, as text (null without a sweep). */
  readonly label: string | null;
}

export interface SimPlan {
  readonly scenario: SimScenario;
  /** Every declared parameter: default, then --set, then --kernel. */
  readonly params: SimParams;
  /** Cost overrides from --set. */
  readonly costs: Partial<CostModel>;
  readonly sweep: SimSweep | null;
  /** Keep only runs of this kernel (the scenario has no `kernel` parameter), or null. */
  readonly kernelFilter: string | null;
  readonly points: readonly SimPoint[];
}

export interface SimFlags {
  readonly set?: readonly string[];
  readonly sweep?: readonly string[];
  readonly kernel?: string;
}

/** Every kernel preset name (what --kernel accepts for scenarios that filter their runs by kernel). */
export const KERNEL_NAMES: readonly string[] = PRESETS.map((p) => p.name);

function withSetting(
  scenario: SimScenario,
  params: Record<string, SimParamValue>,
  costs: Record<string, unknown>,
  key: string,
  v: SettingValue,
): void {
  if (specOf(scenario, key) !== undefined) params[key] = v as SimParamValue;
  else costs[key] = v;
}

/** Check every flag against the scenario and produce the parameter points to run, in sweep order. */
export function planSimulation(scenario: SimScenario, flags: SimFlags): SimPlan {
  const params: Record<string, SimParamValue> = {};
  for (const p of scenario.params) params[p.name] = p.default;
  const costs: Record<string, unknown> = {};
  const given = new Set<string>();
  for (const text of flags.set ?? []) {
    const [key, raw] = splitAssignment("--set", text, scenario);
    if (given.has(key)) throw new SimParamError(`--set: ${key} is given twice`);
    given.add(key);
    withSetting(scenario, params, costs, key, parseSetting("--set", scenario, key, raw));
  }
  let kernelFilter: string | null = null;
  if (flags.kernel !== undefined) {
    const spec = specOf(scenario, "kernel");
    if (spec !== undefined) {
      if (given.has("kernel")) throw new SimParamError("--kernel and --set kernel=... both given");
      given.add("kernel");
      params.kernel = parseParamValue("--kernel", spec, flags.kernel);
    } else if (KERNEL_NAMES.includes(flags.kernel)) {
      kernelFilter = flags.kernel;
    } else {
      throw new SimParamError(
        `--kernel: unknown kernel '${flags.kernel}'; known: ${KERNEL_NAMES.join(", ")}`,
      );
    }
  }
  const sweeps = flags.sweep ?? [];
  if (sweeps.length > 1) throw new SimParamError(`--sweep: one key at a time, got ${sweeps.length}`);
  let sweep: SimSweep | null = null;
  if (sweeps.length === 1) {
    const [key, raw] = splitAssignment("--sweep", sweeps[0], scenario);
    if (given.has(key)) throw new SimParamError(`--sweep: ${key} is also fixed by --set or --kernel`);
    sweep = { key, values: expandSweep("--sweep", scenario, key, raw) };
  }
  const points: SimPoint[] =
    sweep === null
      ? [{ params: { ...params }, costs: { ...costs } as Partial<CostModel>, label: null }]
      : sweep.values.map((v) => {
          const p = { ...params };
          const c = { ...costs };
          withSetting(scenario, p, c, sweep.key, v);
          return { params: p, costs: c as Partial<CostModel>, label: formatSetting(scenario, sweep.key, v) };
        });
  return { scenario, params, costs: costs as Partial<CostModel>, sweep, kernelFilter, points };
}
