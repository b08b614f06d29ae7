import { EXIT } from "../exit-codes.js";
import { isModuleRef, type KilledCheck } from "./check-watched.js";
import type { WatchedJob } from "./jobs.js";
import { stallMessage } from "./stall.js";
import { GRACE_MS, runWatched } from "./watchdog.js";

/**
 * Import the user's scenario or variant module in a watched thread first: a module whose top-level
 * code never finishes would hang the thread that imports it, deaf to Ctrl-C. Null if the import
 * finished (or failed: importing it again where it is used reports that), else what the watchdog
 * saw.
 */
export async function importWatched(
  what: "scenario" | "variant",
  ref: string | null | undefined,
  stepTimeoutMs: number,
  signal: AbortSignal,
): Promise<KilledCheck | null> {
  if (!isModuleRef(ref ?? null, what)) return null;
  const job: WatchedJob = { kind: "import", what, ref: ref as string };
  let w: Awaited<ReturnType<typeof runWatched>>;
  try {
    w = await runWatched(job, { signal, stepTimeoutMs, choiceCapacity: 0, watchTasks: true });
  } catch {
    return null;
  }
  if (w.kind === "done") return null;
  return { killed: w, stall: stallMessage(w), replay: null, counterexample: null, graceMs: GRACE_MS };
}

/** The scenario's and the variant's imports, watched: the first that never finished, as a message and exit code. */
export async function importsStall(
  files: { readonly scenario?: string | null; readonly variant?: string | null },
  stepTimeoutMs: number,
  signal: AbortSignal,
): Promise<{ readonly text: string; readonly code: number } | null> {
  const k =
    (await importWatched("scenario", files.scenario, stepTimeoutMs, signal)) ??
    (await importWatched("variant", files.variant, stepTimeoutMs, signal));
  if (k === null) return null;
  const text =
    k.stall === null
      ? `stopped (${k.killed.why}) while importing your module`
      : `error in your module: ${k.stall.message}\n  ${k.stall.where}`;
  return { text, code: k.stall === null ? EXIT.interrupted : EXIT.userError };
}
