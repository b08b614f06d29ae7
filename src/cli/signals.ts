import { constants as osConstants } from "node:os";
import { EXIT } from "./exit-codes.js";

/** The signals that stop a run cleanly: Ctrl-C, a kill, a closed terminal. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Exit status after a stop signal: 130 for Ctrl-C, as documented; 128 + n for the others. */
export function signalExit(sig: NodeJS.Signals): number {
  return sig === "SIGINT" ? EXIT.interrupted : 128 + (osConstants.signals[sig] ?? 0);
}
