import { readFileSync } from "node:fs";
import type { Command } from "@commander-js/extra-typings";
import { ReplayFormatError } from "../../engine/replay-codec.js";
import { ReplayMismatch } from "../../engine/scheduler.js";
import type { MachineConfig } from "../../kernel/machine.js";
import { programFor, recordTraceDoc } from "../../scenarios/check.js";
import { overridesOf } from "../../scenarios/define.js";
import { ScenarioError } from "../../scenarios/errors.js";
import { ResolveError, resolveScenario, resolveVariant, runConfigFor } from "../../scenarios/resolve.js";
import { writeChromeTrace } from "../../trace/perfetto-file.js";
import { decodeReplayToken } from "../../trace/replay-token.js";
import { TraceDoc } from "../../trace/schema.js";
import type { SetExit } from "../commands.js";
import { EXIT, UsageError } from "../exit-codes.js";
import { formatCounterexample } from "../format-check.js";
import type { Out } from "../io.js";

/** Read a replay string, or the replay string inside a trace file. */
function replayStringOf(arg: string): string {
  if (arg.startsWith("tdp1.")) return arg;
  let text: string;
  try {
    text = readFileSync(arg, "utf8");
  } catch {
    throw new UsageError(`'${arg}' is neither a replay string (tdp1.…) nor a readable trace file`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new UsageError(`${arg}: not JSON: ${(e as Error).message}`);
  }
  const doc = TraceDoc.safeParse(json);
  if (!doc.success) {
    const i = doc.error.issues[0];
    throw new UsageError(
      `${arg}: not a tdplab trace (schema v1): ${i.path.join(".") || "(document)"}: ${i.message}`,
    );
  }
  return doc.data.replay;
}

/** `tdplab replay`: run exactly the recorded schedule again and print it. */
export function registerReplay(program: Command, out: Out, setExit: SetExit): void {
  program
    .command("replay")
    .description("reproduce a run from a replay string or a trace file, step by step")
    .argument("<replay>", "replay string (tdp1.…) or trace.json")
    .option("--json", "print the trace document (JSON) on stdout")
    .option("--steps", "also print every step")
    .option("--perfetto <file>", "write the replayed run as Chrome Trace Event JSON (ui.perfetto.dev)")
    .action(async (arg, o) => {
      const token = (() => {
        try {
          return decodeReplayToken(replayStringOf(arg));
        } catch (e) {
          if (e instanceof ReplayFormatError) throw new UsageError(`bad replay string: ${e.message}`);
          throw e;
        }
      })();
      const h = token.header;
      let req: Parameters<typeof programFor>[0] & { variantRef: string | null; featureFlags: string[] };
      try {
        const scenario = await resolveScenario(h.s);
        const variant = await resolveVariant(h.v ?? null);
        const machine = (h.m ?? {}) as Partial<MachineConfig>;
        const config = runConfigFor(scenario, variant, { kernel: h.k, features: h.f ?? [], machine });
        req = { scenario, variant, config, variantRef: h.v ?? null, featureFlags: [...(h.f ?? [])] };
      } catch (e) {
        if (e instanceof ScenarioError) throw new UsageError(e.report());
        if (e instanceof ResolveError) throw new UsageError(e.message);
        throw e;
      }
      const replay = replayStringOf(arg);
      let recorded: ReturnType<typeof recordTraceDoc>;
      try {
        // The document carries the model state after every step, for the explorer and the counters.
        recorded = recordTraceDoc(programFor(req), token.choices, {
          overrides: overridesOf(req.variant),
          maxSteps: req.scenario.scenario.maxSteps,
          run: {
            scenario: req.scenario.scenario.name,
            kernel: req.config.kernel,
            features: req.featureFlags,
            variant: req.variantRef,
          },
          replay,
        });
      } catch (e) {
        if (e instanceof ReplayMismatch)
          throw new UsageError(`the replay does not fit this tdplab's model: ${e.message}`);
        throw e;
      }
      const { doc: trace, result } = recorded;
      if (o.perfetto) {
        try {
          writeChromeTrace(o.perfetto, trace);
        } catch (e) {
          throw new UsageError(`--perfetto: cannot write '${o.perfetto}': ${(e as Error).message}`);
        }
        out.info(`wrote ${o.perfetto}: open it in https://ui.perfetto.dev`);
      }
      if (o.json) out.data(JSON.stringify(trace, null, 1));
      else {
        out.data(
          `${trace.run.scenario} [${trace.run.kernel}${trace.run.variant ? `, variant ${trace.run.variant}` : ""}]: ${trace.steps.length} steps, ${result.status === "violation" ? "VIOLATION" : "no violation"}`,
        );
        out.data(formatCounterexample(trace, replay, null, o.steps === true));
      }
      setExit(result.status === "violation" ? EXIT.violation : EXIT.ok);
    });
}
