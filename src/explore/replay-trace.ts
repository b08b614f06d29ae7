import { ReplayFormatError } from "../engine/replay-codec.js";
import { ReplayMismatch } from "../engine/scheduler.js";
import type { MachineConfig } from "../kernel/machine.js";
import { BUILTIN_SCENARIOS } from "../scenarios/builtin/index.js";
import { programFor, recordTraceDoc } from "../scenarios/check.js";
import { overridesOf } from "../scenarios/define.js";
import { ScenarioError } from "../scenarios/errors.js";
import { ResolveError, resolveScenario, resolveVariant, runConfigFor } from "../scenarios/resolve.js";
import { BUILTIN_VARIANTS } from "../scenarios/variants/index.js";
import { decodeReplayToken, type ReplayHeader } from "../trace/replay-token.js";
import type { TraceDoc } from "../trace/schema.js";
import { ExploreError } from "./errors.js";

/**
 * Which scenario and variant references a replay string may name. Built-in names are always fine.
 * A file reference loads (and, for a .ts/.js module, runs) that file, so a server regenerating
 * traces from URLs takes only the files of the trace it was started on.
 */
export type FileRefPolicy = "any" | ReadonlySet<string>;

const isBuiltinScenario = (ref: string) => BUILTIN_SCENARIOS.some((s) => s.name === ref);
const isBuiltinVariant = (ref: string) => BUILTIN_VARIANTS.some((v) => v.name === ref);

/** The file references (scenario and variant) a replay header names, besides built-in names. */
export function fileRefsOf(h: ReplayHeader): string[] {
  const out: string[] = [];
  if (!isBuiltinScenario(h.s)) out.push(h.s);
  if (h.v && !isBuiltinVariant(h.v)) out.push(h.v);
  return out;
}

/** Decode a replay string; a malformed one is the user's error. */
export function decodeReplay(replay: string): ReturnType<typeof decodeReplayToken> {
  try {
    return decodeReplayToken(replay);
  } catch (e) {
    if (e instanceof ReplayFormatError) throw new ExploreError(`bad replay string: ${e.message}`);
    throw e;
  }
}

/**
 * The trace document of a replay string: resolve what its header names, re-run its choices with
 * the states recorded (recordTraceDoc, the code path of `tdplab replay`), and build the document.
 */
export async function traceFromReplay(replay: string, files: FileRefPolicy = "any"): Promise<TraceDoc> {
  const token = decodeReplay(replay);
  const h = token.header;
  if (files !== "any") {
    const refused = fileRefsOf(h).filter((r) => !files.has(r));
    if (refused.length > 0)
      throw new ExploreError(
        `this replay string names ${refused.map((r) => `'${r}'`).join(" and ")}, which is not built in; the explorer regenerates traces of built-in scenarios and variants, and of the files of the trace it was started on`,
      );
  }
  let req: Parameters<typeof programFor>[0] & { variantRef: string | null; featureFlags: string[] };
  try {
    const scenario = await resolveScenario(h.s);
    const variant = await resolveVariant(h.v ?? null);
    const machine = (h.m ?? {}) as Partial<MachineConfig>;
    const config = runConfigFor(scenario, variant, { kernel: h.k, features: h.f ?? [], machine });
    req = { scenario, variant, config, variantRef: h.v ?? null, featureFlags: [...(h.f ?? [])] };
  } catch (e) {
    if (e instanceof ScenarioError) throw new ExploreError(e.report());
    if (e instanceof ResolveError) throw new ExploreError(e.message);
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
    }).doc;
  } catch (e) {
    if (e instanceof ReplayMismatch)
      throw new ExploreError(`the replay does not fit this tdplab's model: ${e.message}`);
    throw e;
  }
}
