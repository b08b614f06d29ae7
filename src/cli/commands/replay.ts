import { readFileSync } from "node:fs";
import type { Command } from "@commander-js/extra-typings";
import { decodeReplay, ReplayError, recordReplay } from "../../scenarios/replay.js";
import { writeChromeTrace } from "../../trace/perfetto-file.js";
import { TraceDoc } from "../../trace/schema.js";
import type { SetExit } from "../commands.js";
import { EXIT, UsageError } from "../exit-codes.js";
import { formatCounterexample } from "../format-check.js";
import type { Out } from "../io.js";
import { intFlag } from "../options.js";
import { replayWatched } from "../watched/replay-watched.js";
import { isLitmusReplay, replayLitmusWitness } from "./replay-litmus.js";

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
    .argument(
      "<replay>",
      "replay string (tdp1.…, or a litmus witness's lkmm1.…/lit1.… with --litmus), or trace.json",
    )
    .option("--json", "print the trace document (JSON) on stdout")
    .option("--steps", "also print every step")
    .option("--perfetto <file>", "write the replayed run as Chrome Trace Event JSON (ui.perfetto.dev)")
    .option("--scenario <file>", "the scenario file the string was recorded on (checked by content hash)")
    .option("--variant <file>", "the variant module the string was recorded on (checked by content hash)")
    .option(
      "--step-timeout <ms>",
      "your module's code running this long without reaching a primitive is an error in your module",
      "5000",
    )
    .option("--litmus <file>", "for a litmus witness (lkmm1.… or lit1.…): the litmus test it belongs to")
    .action(async (arg, o) => {
      if (isLitmusReplay(arg)) {
        replayLitmusWitness(arg, o.litmus, o.json === true, out);
        setExit(EXIT.ok);
        return;
      }
      const replay = replayStringOf(arg);
      const files = { scenario: o.scenario, variant: o.variant };
      let recorded: Awaited<ReturnType<typeof recordReplay>>;
      try {
        // The document carries the model state after every step, for the explorer and the counters.
        // The user's own modules run where a watchdog can stop a loop of theirs that never yields.
        if (files.scenario === undefined && files.variant === undefined)
          recorded = await recordReplay(replay, files);
        else {
          const r = await replayWatched(replay, files, intFlag("--step-timeout", o.stepTimeout, 1) ?? 5000);
          if (r.kind === "killed") {
            out.data(r.text);
            setExit(r.code);
            return;
          }
          recorded = r.value;
        }
      } catch (e) {
        if (e instanceof ReplayError) throw new UsageError(e.message);
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
        // The memory model, as check's summary names it: only when it is not the default.
        const mm = (decodeReplay(replay).header.m as { memoryModel?: string } | undefined)?.memoryModel;
        const model = mm === undefined || mm === "sc" ? "" : `, ${mm}`;
        out.data(
          `${trace.run.scenario} [${trace.run.kernel}${trace.run.variant ? `, variant ${trace.run.variant}` : ""}${model}]: ${trace.steps.length} steps, ${result.status === "violation" ? "VIOLATION" : "no violation"}`,
        );
        out.data(formatCounterexample(trace, replay, null, o.steps === true));
      }
      const inv = result.status === "violation" ? trace.violation?.invariant : undefined;
      // A run the depth bound cut proves nothing: not even a repeating tail shows that it never
      // ends (the tasks' local state is not seen), so it is inconclusive, never a violation.
      setExit(
        inv === "user-error"
          ? EXIT.userError
          : inv === "model-error"
            ? EXIT.internal
            : inv === "livelock"
              ? EXIT.inconclusive
              : inv !== undefined
                ? EXIT.violation
                : EXIT.ok,
      );
    });
}
