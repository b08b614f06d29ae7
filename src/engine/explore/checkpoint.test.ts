import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { host } from "../host.js";
import type { Gen } from "../op.js";
import type { Program } from "../runtime.js";
import { explore, exploreAsync } from "./explore.js";
import { buildProgram, progSpec } from "./testkit.js";
import type { Checkpoint, ExploreOptions, ExploreResult, Strategy } from "./types.js";

const json = (c: Checkpoint): Checkpoint => JSON.parse(JSON.stringify(c));

/** Explore in legs of `leg` executions, round-tripping the checkpoint through JSON between legs. */
function inLegs(p: Program, opts: ExploreOptions, leg: number): { r: ExploreResult; legs: number } {
  let r = explore(p, { ...opts, maxExecutions: leg });
  let legs = 1;
  while (!r.complete && r.checkpoint) {
    const cp = json(r.checkpoint);
    r = explore(p, { ...opts, resumeFrom: cp, maxExecutions: cp.executions + leg });
    legs++;
    if (legs > 10_000) throw new Error("no progress");
  }
  return { r, legs };
}

/** Long executions: each task does `work` private steps around two shared writes. */
function longRuns(work: number): Program {
  return ({ spawn }) => {
    const h = host();
    const x = h.newObject("x");
    const y = h.newObject("y");
    for (let t = 0; t < 3; t++) {
      const mine = h.newObject(`p${t}`);
      spawn(
        `t${t}`,
        (function* (): Gen<void> {
          for (let i = 0; i < work; i++) yield { kind: "write", obj: mine, fn: "w", step: "private" };
          yield { kind: "write", obj: x, fn: "w", step: "x" };
          for (let i = 0; i < work; i++) yield { kind: "write", obj: mine, fn: "w", step: "private" };
          yield { kind: "rmw", obj: y, fn: "w", step: "y" };
        })(),
      );
    }
  };
}

describe("checkpoint and resume", () => {
  for (const strategy of ["dpor", "exhaustive", "bounded"] as Strategy[]) {
    it(`${strategy}: an interrupted-then-resumed run reaches the uninterrupted execution count`, () => {
      fc.assert(
        fc.property(
          progSpec({ locks: 1, choices: true, spawns: true }),
          fc.integer({ min: 1, max: 7 }),
          (spec, leg) => {
            const p = buildProgram(spec);
            const opts: ExploreOptions = { strategy, stopOnFirstViolation: false, preemptionBound: 1 };
            const whole = explore(p, opts);
            const { r } = inLegs(p, opts, leg);
            expect(r.complete).toBe(whole.complete);
            expect(r.cutBy).toEqual(whole.cutBy);
            expect(r.executions).toBe(whole.executions);
            expect(r.blockedExecutions).toBe(whole.blockedExecutions);
            expect(r.stats.violatingExecutions).toBe(whole.stats.violatingExecutions);
          },
        ),
        { numRuns: 40, seed: 21 },
      );
    });
  }

  it("a run cut mid-execution by the time limit rolls back and resumes exactly", () => {
    const p = longRuns(500);
    const whole = explore(p);
    expect(whole.complete).toBe(true);
    const slice = 8;
    let r = explore(p, { timeLimitMs: slice });
    let legs = 1;
    let midRun = 0;
    while (!r.complete && legs < 3000) {
      expect(r.cutBy).toEqual(["time-limit"]);
      const cp = json(r.checkpoint!);
      const before = cp.executions;
      r = explore(p, { resumeFrom: cp, timeLimitMs: cp.elapsedMs + slice });
      // Either whole executions were added, or the one in flight was rolled back.
      if (r.executions === before && !r.complete) midRun++;
      legs++;
    }
    expect(r.complete).toBe(true);
    expect(legs).toBeGreaterThan(2);
    expect(midRun).toBeGreaterThan(0);
    expect(r.executions).toBe(whole.executions);
  });

  it("exploreAsync honours an AbortSignal and the checkpoint resumes from there", async () => {
    const p = buildProgram({
      objects: 2,
      locks: 0,
      tasks: [
        [
          { k: "write", o: 0 },
          { k: "write", o: 1 },
          { k: "write", o: 0 },
        ],
        [
          { k: "rmw", o: 0 },
          { k: "rmw", o: 1 },
          { k: "read", o: 0 },
        ],
        [
          { k: "write", o: 1 },
          { k: "read", o: 0 },
          { k: "rmw", o: 1 },
        ],
        [
          { k: "read", o: 1 },
          { k: "write", o: 0 },
          { k: "rmw", o: 0 },
        ],
      ],
    });
    const whole = explore(p, { stopOnFirstViolation: false });
    const ac = new AbortController();
    let ticks = 0;
    const r = await exploreAsync(p, {
      stopOnFirstViolation: false,
      signal: ac.signal,
      onProgress: () => {
        if (++ticks === 2) ac.abort();
      },
    });
    expect(r.complete).toBe(false);
    expect(r.cutBy).toEqual(["interrupted"]);
    expect(r.executions).toBeGreaterThan(0);
    expect(r.executions).toBeLessThan(whole.executions);
    const rest = explore(p, { stopOnFirstViolation: false, resumeFrom: json(r.checkpoint!) });
    expect(rest.complete).toBe(true);
    expect(rest.executions).toBe(whole.executions);
  });

  for (const strategy of ["dpor", "portfolio"] as const) {
    it(`${strategy}: periodic checkpoints taken while it runs each resume to the uninterrupted counts`, async () => {
      const p = longRuns(1000);
      const whole = explore(p, { strategy, stopOnFirstViolation: false });
      const taken: Checkpoint[] = [];
      const r = await exploreAsync(p, {
        strategy,
        stopOnFirstViolation: false,
        checkpointEveryMs: 0,
        onCheckpoint: (c) => taken.push(json(c)),
      });
      expect(r.executions).toBe(whole.executions);
      // One per slice of the search (how many depends on the machine's speed).
      expect(taken.length).toBeGreaterThan(0);
      const last = taken[taken.length - 1];
      expect(last.executions).toBeGreaterThan(0);
      expect(last.executions).toBeLessThan(whole.executions);
      for (const c of [taken[0], last]) {
        const rest = explore(p, { strategy, stopOnFirstViolation: false, resumeFrom: c });
        expect(rest.complete).toBe(true);
        expect(rest.executions).toBe(whole.executions);
        expect(rest.steps).toBe(whole.steps);
      }
    });
  }

  it("sampling runs carry no checkpoint", () => {
    const r = explore(longRuns(2), { strategy: "random", maxExecutions: 3 });
    expect(r.checkpoint).toBeUndefined();
  });
});
