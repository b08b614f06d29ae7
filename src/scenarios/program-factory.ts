import type { Program } from "../engine/runtime.js";
import { BUILTIN_SCENARIOS } from "./builtin/index.js";
import { runConfigFor } from "./resolve.js";

export interface BuiltinProgramArgs {
  readonly scenario: string;
  readonly kernel?: string;
  readonly features?: readonly string[];
}

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
  });
  return s.build(config);
}
