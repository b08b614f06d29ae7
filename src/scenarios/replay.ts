import { extname } from "node:path";
import { ReplayFormatError } from "../engine/replay-codec.js";
import { ReplayMismatch } from "../engine/scheduler.js";
import { type MachineConfig, MEMORY_MODELS } from "../kernel/machine.js";
import { decodeReplayToken, type ReplayToken } from "../trace/replay-token.js";
import { programFor, recordTraceDoc } from "./check.js";
import { contentHash, isBuiltinScenarioName, isBuiltinVariantName } from "./content-hash.js";
import { overridesOf } from "./define.js";
import { ScenarioError } from "./errors.js";
import { ResolveError, resolveScenario, resolveVariant, runConfigFor } from "./resolve.js";

/** A replay string that is malformed, names what cannot be resolved, or does not fit the model. */
export class ReplayError extends Error {}

/** Decode a replay string; a malformed one is a ReplayError. */
export function decodeReplay(replay: string): ReplayToken {
  try {
    return decodeReplayToken(replay);
  } catch (e) {
    if (e instanceof ReplayFormatError) throw new ReplayError(`bad replay string: ${e.message}`);
    throw e;
  }
}

/**
 * Run a replay string again: resolve the scenario, variant, kernel and features its header names,
 * re-run its choices with the model state recorded after every step, and build the trace document.
 * `tdplab replay` and the explorer's server both come here.
 */
export async function recordReplay(
  replay: string,
  files: ReplayFiles = {},
): Promise<ReturnType<typeof recordTraceDoc>> {
  const token = decodeReplay(replay);
  const h = token.header;
  let req: Parameters<typeof programFor>[0] & { variantRef: string | null; featureFlags: string[] };
  try {
    const scenarioRef = fileFor("scenario", h.s, h.sh, files.scenario, isBuiltinScenarioName);
    const variantRef = h.v ? fileFor("variant", h.v, h.vh, files.variant, isBuiltinVariantName) : null;
    const scenario = await resolveScenario(scenarioRef);
    const variant = await resolveVariant(variantRef);
    const machine = (h.m ?? {}) as Partial<MachineConfig>;
    const mm = machine.memoryModel;
    if (mm !== undefined && !MEMORY_MODELS.includes(mm))
      throw new ReplayError(
        `this replay was recorded under the memory model '${mm}', which this tdplab does not run`,
      );
    const config = runConfigFor(scenario, variant, {
      kernel: h.k,
      features: h.f ?? [],
      machine,
      params: h.p,
    });
    req = { scenario, variant, config, variantRef: h.v ?? null, featureFlags: [...(h.f ?? [])] };
  } catch (e) {
    if (e instanceof ScenarioError) throw new ReplayError(e.report());
    if (e instanceof ResolveError) throw new ReplayError(e.message);
    throw e;
  }
  let rec: ReturnType<typeof recordTraceDoc>;
  try {
    rec = recordTraceDoc(programFor(req), token.choices, {
      overrides: overridesOf(req.variant),
      maxSteps: h.d ?? req.scenario.scenario.maxSteps,
      run: {
        scenario: req.scenario.scenario.name,
        kernel: req.config.kernel,
        features: req.featureFlags,
        variant: req.variantRef,
      },
      replay: replay.trim(),
    });
  } catch (e) {
    if (e instanceof ReplayMismatch)
      throw new ReplayError(`the replay does not fit this tdplab's model: ${e.message}`);
    throw e;
  }
  if (rec.leftover > 0) {
    throw new ReplayError(
      `the replay does not fit this run: it ended with ${rec.leftover} of its ${token.choices.length} choices unused, so it was recorded on another scenario, kernel, variant or tdplab version`,
    );
  }
  return rec;
}

/** Files the user passes to replay a string recorded on a scenario file or a variant module. */
export interface ReplayFiles {
  readonly scenario?: string;
  readonly variant?: string;
}

/**
 * The reference to resolve for a header's scenario or variant. A built-in name resolves as it is.
 * A file is never loaded because a replay string names it: the user passes it, and its content
 * must have the hash the header recorded.
 */
function fileFor(
  what: "scenario" | "variant",
  name: string,
  hash: string | undefined,
  given: string | undefined,
  builtin: (n: string) => boolean,
): string {
  if (builtin(name) && hash === undefined) {
    if (given !== undefined)
      throw new ReplayError(
        `this replay is of the built-in ${what} '${name}'; --${what} ${given} is not needed`,
      );
    return name;
  }
  if (hash === undefined && extname(name) === "") {
    throw new ReplayError(
      `unknown ${what} '${name}': it is not built into this tdplab, and it is not a file`,
    );
  }
  const recorded = hash === undefined ? "" : ` (sha256 ${hash})`;
  if (given === undefined) {
    throw new ReplayError(
      `this replay was recorded on the ${what} file '${name}'${recorded}; a replay string never loads files by itself: pass it with --${what} FILE`,
    );
  }
  let actual: string;
  try {
    actual = contentHash(given);
  } catch (e) {
    throw new ReplayError(`--${what}: cannot read '${given}': ${(e as Error).message}`);
  }
  if (hash !== undefined && actual !== hash) {
    throw new ReplayError(
      `--${what} ${given} is not the file this replay was recorded on: its content has sha256 ${actual}, the replay's '${name}' had ${hash}`,
    );
  }
  return given;
}
