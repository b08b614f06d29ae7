import type { ReplayFiles, recordReplay } from "../../scenarios/replay.js";
import { EXIT } from "../exit-codes.js";
import { catchStopSignals, signalExit } from "../signals.js";
import { importsStall } from "./import-watched.js";
import { stallMessage } from "./stall.js";
import { runWatched } from "./watchdog.js";

/**
 * recordReplay() in a watched worker thread: a replay of a run that stalled in the user's code
 * stalls at the same place, and is reported the same way instead of hanging.
 */
export async function replayWatched(
  replay: string,
  files: ReplayFiles,
  stepTimeoutMs: number,
): Promise<
  | { kind: "done"; value: Awaited<ReturnType<typeof recordReplay>> }
  | { kind: "killed"; text: string; code: number }
> {
  const caught = catchStopSignals();
  try {
    const loop = await importsStall(files, stepTimeoutMs, caught.signal);
    if (loop !== null) {
      const stopSignal = caught.received();
      return {
        kind: "killed",
        text: `replay: ${loop.text}`,
        code: stopSignal ? signalExit(stopSignal) : loop.code,
      };
    }
    const w = await runWatched(
      { kind: "replay", replay, files },
      // A replay's choices are all in its string: the beacon need not keep any.
      { signal: caught.signal, stepTimeoutMs, choiceCapacity: 0, watchTasks: true },
    );
    if (w.kind === "done")
      return { kind: "done", value: w.value as Awaited<ReturnType<typeof recordReplay>> };
    const stall = stallMessage(w);
    const stopSignal = caught.received();
    const code =
      stopSignal !== null ? signalExit(stopSignal) : stall === null ? EXIT.internal : EXIT.userError;
    const text =
      stall === null
        ? `replay: stopped (${w.why}) while tdplab's own code ran`
        : `replay: error in your module: ${stall.message}\n  ${stall.where}`;
    return { kind: "killed", text, code };
  } finally {
    caught.release();
  }
}
