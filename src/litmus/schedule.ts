import { decodeChoices, encodeChoices, ReplayFormatError } from "../engine/replay-codec.js";
import { runProgram } from "../engine/runtime.js";
import { ReplayScheduler } from "../engine/scheduler.js";
import { decodeJson, encodeJson, testDigest } from "./digest.js";
import type { LitmusTest } from "./parse.js";
import { litmusProgram, type OperationalModel } from "./run.js";

/**
 * Witnesses of the operational models (sc, tso): a schedule of the engine, recorded as its choice
 * sequence. The replay string `lit1.<base64url(JSON {t: test name, h: digest, m: model, c: the
 * choices, replay-codec encoded})>` runs that schedule again with a ReplayScheduler and shows
 * every step (store-buffer drains included under TSO) and the final state.
 */
const PREFIX = "lit1.";

export interface ScheduleWitness {
  readonly model: OperationalModel;
  /** Every step of the schedule: the task (P0, P0.store_buffer, ...) and what it did. */
  readonly steps: readonly { readonly task: string; readonly step: string }[];
  /** Every register and location at the end. */
  readonly values: Readonly<Record<string, number>>;
  readonly replay: string;
}

interface Header {
  readonly t: string;
  readonly h: string;
  readonly m: OperationalModel;
  readonly c: string;
}

export function isScheduleReplay(s: string): boolean {
  return s.trim().startsWith(PREFIX);
}

/** Run `choices` on `test` under `model` and record it; null if they do not fit a complete run. */
function record(
  test: LitmusTest,
  model: OperationalModel,
  choices: readonly number[],
): ScheduleWitness | null {
  const sink: { values: Record<string, number> | null } = { values: null };
  const scheduler = new ReplayScheduler(choices);
  let r: ReturnType<typeof runProgram>;
  try {
    r = runProgram(litmusProgram(test, model, sink), { scheduler, record: true });
  } catch {
    return null;
  }
  if (!scheduler.exhausted || sink.values === null || r.status !== "ok") return null;
  const header: Header = { t: test.name, h: testDigest(test), m: model, c: encodeChoices(choices) };
  return {
    model,
    steps: (r.trace ?? []).map((s) => ({ task: r.taskNames[s.task], step: s.step })),
    values: Object.fromEntries(Object.entries(sink.values).sort()),
    replay: encodeJson(PREFIX, header),
  };
}

/** The witness of a run the explorer recorded (its choice sequence). */
export function scheduleWitness(
  test: LitmusTest,
  model: OperationalModel,
  choices: readonly number[],
): ScheduleWitness {
  const w = record(test, model, choices);
  if (w === null) throw new Error(`internal: the recorded schedule of ${test.name} does not replay`);
  return w;
}

/** The schedule a `lit1.` string names, run again on `test`; a ReplayFormatError says why not. */
export function replaySchedule(text: string, test: LitmusTest): ScheduleWitness {
  const h = decodeJson(PREFIX, text) as Header | null;
  if (h === null || typeof h.t !== "string" || typeof h.h !== "string" || typeof h.c !== "string")
    throw new ReplayFormatError("not a lit1 replay string (its payload does not decode)");
  if (h.m !== "sc" && h.m !== "tso")
    throw new ReplayFormatError(`a lit1 string names model sc or tso, not '${h.m}'`);
  if (h.t !== test.name || h.h !== testDigest(test))
    throw new ReplayFormatError(
      `the string was recorded on litmus test ${h.t} (digest ${h.h}), not on this file's ${test.name} (digest ${testDigest(test)})`,
    );
  const w = record(test, h.m, decodeChoices(h.c));
  if (w === null) throw new ReplayFormatError(`the schedule does not fit ${test.name} under ${h.m}`);
  return w;
}

/** The schedule as text: one line per step, in a column per task. */
export function formatSchedule(w: ScheduleWitness, file?: string): string {
  const lines = [`Witness: a schedule of the engine under ${w.model} (every step, in order)`];
  for (const s of w.steps) lines.push(`  ${s.task.padEnd(16)} ${s.step}`);
  lines.push(
    `  final: ${Object.entries(w.values)
      .map(([k, v]) => `${k}=${v};`)
      .join(" ")}`,
  );
  lines.push(`  replay: tdplab replay '${w.replay}' --litmus ${file ?? "FILE.litmus"}`);
  return lines.join("\n");
}
