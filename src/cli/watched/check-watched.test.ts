import { describe, expect, it } from "vitest";
import { formatKilled, type KilledCheck } from "./check-watched.js";

/** A run the watchdog had to kill after a stop it did not answer, given `graceMs` to answer. */
function killedAfterStop(graceMs: number): KilledCheck {
  return {
    killed: {
      kind: "killed",
      why: "time-limit",
      beacon: { counter: 7, inTask: false, task: null, fn: null, step: 0, runs: 3, choices: [] },
      stalledMs: null,
      progress: null,
      found: null,
    },
    stall: null,
    replay: null,
    counterexample: null,
    graceMs,
  };
}

describe("formatKilled", () => {
  it("names the grace the run really had: a parallel run's jobs get theirs on top", () => {
    expect(formatKilled("s [v5.18]", "dpor", killedAfterStop(1000))).toMatch(
      /did not stop within 1000 ms of the time limit/,
    );
    expect(formatKilled("s [v5.18]", "dpor", killedAfterStop(3000))).toMatch(
      /did not stop within 3000 ms of the time limit/,
    );
  });
});
