import { ReplayFormatError } from "../engine/replay-codec.js";
import { ReplayMismatch } from "../engine/scheduler.js";
import type { MachineConfig } from "../kernel/machine.js";
import { decodeReplayToken, type ReplayToken } from "../trace/replay-token.js";
import { programFor, recordTraceDoc } from "./check.js";
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
export async function recordReplay(replay: string): Promise<ReturnType<typeof recordTraceDoc>> {
  const token = decodeReplay(replay);
  const h = token.header;
  let req: Parameters<typeof programFor>[0] & { variantRef: string | null; featureFlags: string[] };
  try {
    const scenario = await resolveScenario(h.s);
    const variant = await resolveVariant(h.v ?? null);
    const machine = (h.m ?? {}) as Partial<MachineConfig>;
    const config = runConfigFor(scenario, variant, { kernel: h.k, features: h.f ?? [], machine });
    req = { scenario, variant, config, variantRef: h.v ?? null, featureFlags: [...(h.f ?? [])] };
  } catch (e) {
    if (e instanceof ScenarioError) throw new ReplayError(e.report());
    if (e instanceof ResolveError) throw new ReplayError(e.message);
    throw e;
  }
  try {
    return recordTraceDoc(programFor(req), token.choices, {
      overrides: overridesOf(req.variant),
      maxSteps: req.scenario.scenario.maxSteps,
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
}
