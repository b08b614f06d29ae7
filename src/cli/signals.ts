import { constants as osConstants } from "node:os";
import { EXIT } from "./exit-codes.js";

/** The signals that stop a long command cleanly: Ctrl-C, a kill, a closed terminal. */
export const STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** Exit status after a stop signal: 130 for Ctrl-C, as documented; 128 + n for the others. */
export function signalExit(sig: NodeJS.Signals): number {
  return sig === "SIGINT" ? EXIT.interrupted : 128 + (osConstants.signals[sig] ?? 0);
}

/** Stop signals caught for one command: an AbortSignal they fire, and which came first. */
export interface CaughtSignals {
  readonly signal: AbortSignal;
  /** The first stop signal received, or null. */
  readonly received: () => NodeJS.Signals | null;
  /** Stop catching (the process's default handling returns). */
  release(): void;
}

/** Catch Ctrl-C, a kill and a closed terminal, so that a run stops cleanly with what it has. */
export function catchStopSignals(): CaughtSignals {
  const controller = new AbortController();
  let first: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    first ??= sig;
    controller.abort();
  };
  for (const sig of STOP_SIGNALS) process.once(sig, onSignal);
  return {
    signal: controller.signal,
    received: () => first,
    release: () => {
      for (const sig of STOP_SIGNALS) process.removeListener(sig, onSignal);
    },
  };
}
