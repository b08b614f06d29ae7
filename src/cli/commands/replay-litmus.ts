import { ReplayFormatError } from "../../engine/replay-codec.js";
import { formatWitness } from "../../litmus/lkmm/format.js";
import { isLkmmReplay, replayLkmm } from "../../litmus/lkmm/replay.js";
import { formatSchedule, isScheduleReplay, replaySchedule } from "../../litmus/schedule.js";
import { UsageError } from "../exit-codes.js";
import type { Out } from "../io.js";
import { readLitmusFile } from "../litmus-file.js";

/** Whether `s` is a litmus witness's replay string (lkmm1. or lit1.) rather than a check's. */
export function isLitmusReplay(s: string): boolean {
  return isLkmmReplay(s) || isScheduleReplay(s);
}

/**
 * `tdplab replay 'lkmm1.…'|'lit1.…' --litmus FILE`: a litmus witness again, judged (LKMM) or run
 * (SC, TSO) on the litmus file, which the string names by test name and digest, never by path.
 */
export function replayLitmusWitness(replay: string, file: string | undefined, json: boolean, out: Out): void {
  if (file === undefined)
    throw new UsageError("a litmus replay string names a litmus test: pass its file with --litmus FILE");
  const test = readLitmusFile(file);
  try {
    if (isLkmmReplay(replay)) {
      const witness = replayLkmm(replay, test);
      if (json)
        out.data(JSON.stringify({ schemaVersion: 1, test: test.name, model: "lkmm", witness }, null, 2));
      else
        out.data(
          `${test.name} (lkmm): the execution is allowed\n${formatWitness(witness, replay.trim(), file)}`,
        );
      return;
    }
    const witness = replaySchedule(replay, test);
    if (json) out.data(JSON.stringify({ schemaVersion: 1, test: test.name, witness }, null, 2));
    else
      out.data(
        `${test.name} (${witness.model}): ${witness.steps.length} steps\n${formatSchedule(witness, file)}`,
      );
  } catch (e) {
    if (e instanceof ReplayFormatError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
}
