import { fileURLToPath } from "node:url";
import type { Program } from "../engine/runtime.js";
import type { MachineConfig } from "../kernel/machine.js";
import { BUILTIN_SCENARIOS } from "./builtin/index.js";
import { overridesOf, type RunConfig } from "./define.js";
import { resolveScenario, resolveVariant, runConfigFor } from "./resolve.js";

export interface BuiltinProgramArgs {
  readonly scenario: string;
  readonly kernel?: string;
  readonly features?: readonly string[];
  readonly machine?: Partial<MachineConfig>;
}

/** This module's own path (the .ts source under tsx, the .js file once built), for ProgramSpec. */
export const PROGRAM_FACTORY_MODULE = fileURLToPath(import.meta.url);

/**
 * A built-in scenario's program from plain data, for explorers that rebuild
 * the program in worker threads (ProgramSpec: this module, export "builtinProgram").
 */
export function builtinProgram(args: BuiltinProgramArgs): Program {
  const s = BUILTIN_SCENARIOS.find((x) => x.name === args.scenario);
  if (!s) throw new Error(`no built-in scenario '${args.scenario}'`);
  const config = runConfigFor({ scenario: s, ref: s.name, features: [], variant: null }, null, {
    kernel: args.kernel,
    features: args.features,
    machine: args.machine,
  });
  return s.build(config);
}

export interface ScenarioProgramArgs {
  /** A built-in scenario's name, or the absolute path of a scenario file or module. */
  readonly scenario: string;
  /** A built-in variant's name, the absolute path of a variant module, or null. */
  readonly variant: string | null;
  /** The run's configuration exactly as the coordinating thread resolved it. */
  readonly config: RunConfig;
}

/**
 * Any scenario (built-in, file or module) with any variant, for worker threads (ProgramSpec export
 * "scenarioProgram"): the thread loads the user's modules itself, and the variant's overrides travel
 * beside the program. The configuration is the coordinator's, so every thread runs the same kernel,
 * features, machine and parameters.
 */
export async function scenarioProgram(
  args: ScenarioProgramArgs,
): Promise<{ program: Program; overrides: ReadonlyMap<string, Function> }> {
  const s = await resolveScenario(args.scenario);
  const variant = await resolveVariant(args.variant);
  return { program: s.scenario.build(args.config), overrides: overridesOf(variant) };
}
