import type { Override } from "../engine/model-fn.js";
import type { Program } from "../engine/runtime.js";
import type { MachineConfig } from "../kernel/machine.js";
import type { Features } from "../mmu/features.js";

/** Everything a scenario is built for: the kernel preset, its features, the machine and parameters. */
export interface RunConfig {
  readonly kernel: string;
  readonly features: Features;
  readonly machine: Partial<MachineConfig>;
  readonly params: Readonly<Record<string, number>>;
}

export interface ScenarioParam {
  readonly default: number;
  readonly min: number;
  readonly max: number;
  readonly description: string;
}

/**
 * A workload the checker (and later the simulator) runs: it builds a fresh
 * Program for every execution from a RunConfig. Built-in scenarios, YAML
 * scenario files and users' own modules all end up as one of these.
 */
export interface Scenario {
  readonly name: string;
  readonly description: string;
  /** What it exercises: seed thread, functions, invariants. */
  readonly exercises?: string;
  /** Kernel preset used when none is given. */
  readonly defaultKernel?: string;
  /** Machine settings used when none are given (e.g. the need_resched budget). */
  readonly machine?: Partial<MachineConfig>;
  readonly params?: Readonly<Record<string, ScenarioParam>>;
  /** Step bound per execution (possible-livelock report beyond it). */
  readonly maxSteps?: number;
  /** The invariants to report (by name, see src/mmu/invariants/catalog.ts); default: all. */
  readonly invariants?: readonly string[];
  build(cfg: RunConfig): Program;
}

/** Identity helper with type checking, for users' scenario modules. */
export function defineScenario(s: Scenario): Scenario {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(s.name))
    throw new TypeError(`scenario name '${s.name}' must match [a-z0-9-]+`);
  return s;
}

/** An override of one named model function (see modelFn): receives the original first. */
// biome-ignore lint/suspicious/noExplicitAny: overrides are heterogeneous by design
export type AnyOverride = Override<any[], any>;

/**
 * A variant: a design under test, expressed as overrides of named model
 * functions and/or feature changes, on top of a kernel preset. The seeds'
 * designs and users' own patches are variants.
 */
export interface Variant {
  readonly name: string;
  readonly description: string;
  /** Seed thread it comes from, if any ("000".."004"). */
  readonly thread?: string;
  /** Feature overrides applied on top of the preset. */
  readonly features?: Partial<Features>;
  /** Replacement model functions, by kernel name. */
  readonly overrides?: Readonly<Record<string, AnyOverride>>;
  /**
   * Invariants that state the very rule this design changes (e.g. "invalid is set only
   * under the write mmu_lock" for a design that sets it under the read lock). They are
   * not reported, so the verdict rests on the rule's consequences.
   */
  readonly waives?: readonly string[];
}

export function defineVariant(v: Variant): Variant {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(v.name))
    throw new TypeError(`variant name '${v.name}' must match [a-z0-9-]+`);
  return v;
}

export function overridesOf(v: Variant | null | undefined): ReadonlyMap<string, Function> {
  return new Map(Object.entries(v?.overrides ?? {}));
}
