import { ReplayFormatError } from "../../engine/replay-codec.js";
import { formatWitness } from "../../litmus/lkmm/format.js";
import { replayLkmm } from "../../litmus/lkmm/replay.js";
import { UsageError } from "../exit-codes.js";
import type { Out } from "../io.js";
import { readLitmusFile } from "../litmus-file.js";

/**
 * `tdplab replay 'lkmm1.…' --litmus FILE`: the LKMM witness execution a string names, judged again
 * on the litmus file (which the string names by test name and digest, never by path).
 */
export function replayLkmmWitness(replay: string, file: string | undefined, json: boolean, out: Out): void {
  if (file === undefined)
    throw new UsageError("an lkmm1 replay string names a litmus test: pass its file with --litmus FILE");
  const test = readLitmusFile(file);
  let witness: ReturnType<typeof replayLkmm>;
  try {
    witness = replayLkmm(replay, test);
    if (json)
      out.data(JSON.stringify({ schemaVersion: 1, test: test.name, model: "lkmm", witness }, null, 2));
    else
      out.data(
        `${test.name} (lkmm): the execution is allowed\n${formatWitness(witness, replay.trim(), file)}`,
      );
  } catch (e) {
    if (e instanceof ReplayFormatError) throw new UsageError(`${file}: ${e.message}`);
    throw e;
  }
}
