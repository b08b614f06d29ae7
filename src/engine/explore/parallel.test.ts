import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { explore } from "./explore.js";
import {
  type Budget,
  exploreParallel,
  Jobs,
  parallelDpor,
  SPLIT_BACKLOG_PER_SLOT,
  Totals,
} from "./parallel.js";
import { fromSpec } from "./parallel-fixture.js";
import { bruteForce, progSpec } from "./testkit.js";
import runJob, { type JobInput, type JobOutput } from "./worker.js";

const fixture = fileURLToPath(new URL("./parallel-fixture.ts", import.meta.url));

/**
 * An in-process pool that completes jobs in a pseudo-random order, to test the
 * coordinator's bookkeeping under many interleavings of job completions.
 */
function shuffledPool(seed: number) {
  const queue: { input: JobInput; resolve: (o: JobOutput) => void }[] = [];
  let x = seed | 1;
  let pumping = false;
  const pump = async () => {
    if (pumping) return;
    pumping = true;
    while (queue.length > 0) {
      await new Promise((r) => setImmediate(r));
      x = (x * 48271) % 2147483647;
      const [job] = queue.splice(x % queue.length, 1);
      job.resolve(await runJob(job.input));
    }
    pumping = false;
  };
  return {
    run(input: JobInput): Promise<JobOutput> {
      const p = new Promise<JobOutput>((resolve) => queue.push({ input, resolve }));
      void pump();
      return p;
    },
  };
}

/** Three tasks over two words and a lock, with a data choice: a few dozen traces. */
const THREE_TASKS = {
  objects: 2,
  locks: 1,
  tasks: [
    [
      { k: "write", o: 0 },
      { k: "lock", l: 0 },
      { k: "rmw", o: 1 },
      { k: "unlock", l: 0 },
    ],
    [
      { k: "read", o: 1 },
      { k: "choose", n: 2 },
      { k: "write", o: 0 },
    ],
    [
      { k: "lock", l: 0 },
      { k: "write", o: 1 },
      { k: "unlock", l: 0 },
      { k: "read", o: 0 },
    ],
  ],
};

/** Small random programs with a lock, data choices, a spawned task and violations. */
const PROGRAMS = progSpec({ locks: 1, choices: true, spawns: true, violations: true, maxTotalOps: 10 });
/** Seeds of the order in which shuffledPool() completes jobs. */
const SEEDS = fc.integer({ min: 1, max: 1000 });

describe("parallel dpor coordinator (in-process, shuffled job completions)", () => {
  it("explores exactly the traces of the sequential search", async () => {
    let splits = 0;
    let resets = 0;
    await fc.assert(
      fc.asyncProperty(
        PROGRAMS,
        fc.integer({ min: 0, max: 5 }),
        SEEDS,
        fc.integer({ min: 1, max: 3 }),
        async (spec, splitOrAdaptive, seed, runs) => {
          // 0: the adaptive split, with budgets of 1-3 runs so that jobs split (and re-split) everywhere.
          const split = splitOrAdaptive === 0 ? undefined : splitOrAdaptive;
          const opts = { stopOnFirstViolation: false, stopRunAtViolation: false };
          const seq = explore(fromSpec(spec), opts);
          const totals = await splitRun(spec, seed, split, runs, (out) => {
            if (out.rest !== undefined) splits++;
          });
          if (totals === null) return;
          expect(totals.executions).toBe(seq.executions);
          expect(totals.stats.violatingExecutions).toBe(seq.stats.violatingExecutions);
          resets += totals.reruns;
        },
      ),
      { numRuns: 150, seed: 31 },
    );
    // The adaptive runs did split jobs, and late races did reset split jobs.
    expect(splits).toBeGreaterThan(100);
    expect(resets).toBeGreaterThan(0);
  });
});

describe("the fixed split (--split-depth) against brute force", () => {
  it("runs one execution per trace, with the violations brute force finds", async () => {
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(PROGRAMS, fc.integer({ min: 1, max: 7 }), SEEDS, async (spec, split, seed) => {
        const brute = bruteForce(spec, false);
        const totals = await splitRun(spec, seed, split);
        if (totals === null) return;
        checked++;
        expect(totals.executions).toBe(brute.traces.size);
        const found = Object.keys(totals.stats.violationsByInvariant).filter(
          (k) => totals.stats.violationsByInvariant[k] > 0,
        );
        const expected = new Set([...brute.invariants].map((k) => k.slice(0, k.indexOf("|"))));
        expect(found.sort()).toEqual([...expected].sort());
      }),
      { numRuns: 300, seed: 15 },
    );
    expect(checked).toBeGreaterThan(250);
  });
});

/**
 * Parallel DPOR of `spec`, split at depth `split` (undefined: adaptively, with budgets of `runs`), jobs
 * finishing in an order drawn from `seed`: its totals, or null if the program cannot be split.
 */
async function splitRun(
  spec: unknown,
  seed: number,
  split?: number,
  runs = 64,
  /** Sees every job's output. */
  seen?: (out: JobOutput) => void,
): Promise<Totals | null> {
  const totals = new Totals();
  const budget: Budget = { opts: {}, totals, deadline: undefined, t0: 0, lastProgress: 0 };
  const pspec = { module: fixture, export: "fromSpec", args: spec };
  const pool = shuffledPool(seed);
  const jobs = new Jobs(
    {
      run: async (input) => {
        const out = await pool.run(input);
        seen?.(out);
        return out;
      },
    },
    6,
  );
  const opts = { stopOnFirstViolation: false, stopRunAtViolation: false };
  const ok = await parallelDpor(
    fromSpec(spec as never),
    pspec,
    jobs,
    budget,
    opts,
    split,
    undefined,
    () => runs,
  );
  return ok ? totals : null;
}

/** Adaptive parallel DPOR of `spec` with budgets of `runs`, jobs finishing in an order drawn from `seed`: its totals. */
async function adaptive(spec: unknown, seed: number, runs: number): Promise<Totals> {
  const totals = await splitRun(spec, seed, undefined, runs);
  expect(totals).not.toBeNull();
  return totals!;
}

describe("the adaptive split", () => {
  it("counts each trace once (a program the fixed split over-counted before it skipped labels asleep)", async () => {
    const spec = {
      objects: 2,
      locks: 1,
      tasks: [
        [
          { k: "read", o: 1 },
          { k: "choose", n: 2 },
          { k: "assert", o: 0, mod: 2 },
          { k: "assert", o: 0, mod: 2 },
        ],
        [
          { k: "assert", o: 0, mod: 2 },
          { k: "choose", n: 2 },
          { k: "write", o: 0 },
        ],
        [
          { k: "rmw", o: 1 },
          { k: "write", o: 0 },
        ],
      ],
    };
    const opts = { stopOnFirstViolation: false, stopRunAtViolation: false };
    const seq = explore(fromSpec(spec as never), opts);
    for (const [seed, runs] of [
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 64],
    ]) {
      const totals = await adaptive(spec, seed, runs);
      expect(totals.executions).toBe(seq.executions);
      expect(totals.stats.violatingExecutions).toBe(seq.stats.violatingExecutions);
    }
  });

  it("a late race into the subtree of a job that split undoes the split (found by the property above)", async () => {
    const spec = {
      objects: 2,
      locks: 1,
      tasks: [
        [
          { k: "choose", n: 2 },
          { k: "spawn", body: [{ k: "read", o: 0 }] },
          { k: "read", o: 0 },
        ],
        [
          { k: "read", o: 0 },
          { k: "read", o: 0 },
          { k: "choose", n: 2 },
        ],
        [{ k: "write", o: 0 }],
      ],
    };
    const seq = explore(fromSpec(spec as never), { stopOnFirstViolation: false, stopRunAtViolation: false });
    const totals = await adaptive(spec, 262, 1);
    expect(totals.executions).toBe(seq.executions);
  });

  const W = (o: number) => ({ k: "write", o });
  const R = (o: number) => ({ k: "read", o });
  const kid = [W(1), R(2), W(2)];
  /** Sixteen steps no other task races with, then three tasks that race: 7,200 traces. */
  const args = {
    objects: 3,
    locks: 0,
    tasks: [
      [
        ...Array.from({ length: 16 }, () => W(0)),
        ...[kid, kid, kid].map((body) => ({ k: "spawn", body })),
        W(1),
        W(2),
      ],
    ],
  };
  const spec = { module: fixture, export: "fromSpec", args };

  /** Runs jobs in this thread; counts them. */
  function counting() {
    let n = 0;
    return {
      ran: () => n,
      async run(input: JobInput): Promise<JobOutput> {
        n++;
        return runJob(input);
      },
      close: async () => {},
    };
  }

  it("splits a long stretch that does not branch into enough jobs, with the sequential count", async () => {
    const opts = { stopOnFirstViolation: false, jobs: 2 };
    const one = explore(fromSpec(args as never), opts);
    const fixed = counting();
    const f = await exploreParallel(spec, { ...opts, splitDepth: 4, transport: fixed });
    const adaptive = counting();
    const a = await exploreParallel(spec, { ...opts, transport: adaptive });
    expect(f.executions).toBe(one.executions);
    expect(a.executions).toBe(one.executions);
    expect(a.complete).toBe(true);
    // A fixed split at depth 4 is one subtree; the adaptive one hands out several per job slot.
    expect(fixed.ran()).toBeLessThan(3);
    expect(adaptive.ran()).toBeGreaterThanOrEqual(SPLIT_BACKLOG_PER_SLOT * 2 * 2);
  });
});

describe("exploreParallel on worker threads", () => {
  const spec = { module: fixture, export: "fromSpec", args: { ...THREE_TASKS, badModulo: 7 } };

  it("dpor, exhaustive and bounded: same verdict and execution count as one thread", async () => {
    for (const strategy of ["dpor", "exhaustive", "bounded"] as const) {
      const opts = { strategy, stopOnFirstViolation: false, preemptionBound: 1 };
      const one = explore(fromSpec(spec.args as never), opts);
      const par = await exploreParallel(spec, { ...opts, jobs: 2, splitDepth: 3 });
      expect(par.executions).toBe(one.executions);
      expect(par.complete).toBe(one.complete);
      expect(par.cutBy).toEqual(one.cutBy);
      expect(par.stats.violatingExecutions).toBe(one.stats.violatingExecutions);
      expect(par.violation !== null).toBe(one.violation !== null);
    }
  });

  it("stops at the first violation with the same verdict", async () => {
    const one = explore(fromSpec(spec.args as never));
    const par = await exploreParallel(spec, { jobs: 2, splitDepth: 2 });
    expect(one.violation).not.toBeNull();
    expect(par.violation?.result.violations[0].invariant).toBe(one.violation?.result.violations[0].invariant);
    expect(par.cutBy).toEqual(["first-violation"]);
  });

  it("random and pct: the same runs as one thread for the same seed", async () => {
    for (const strategy of ["random", "pct"] as const) {
      const opts = { strategy, seed: 5n, maxExecutions: 300, stopOnFirstViolation: false };
      const one = explore(fromSpec(spec.args as never), opts);
      const par = await exploreParallel(spec, { ...opts, jobs: 2 });
      expect(par.executions).toBe(one.executions);
      expect(par.stats.violatingExecutions).toBe(one.stats.violatingExecutions);
      expect(par.steps).toBe(one.steps);
      // With stopOnFirstViolation: the first violation is the same run.
      const oneStop = explore(fromSpec(spec.args as never), { strategy, seed: 5n, maxExecutions: 300 });
      const parStop = await exploreParallel(spec, { strategy, seed: 5n, maxExecutions: 300, jobs: 2 });
      expect(parStop.violation?.replay).toBe(oneStop.violation?.replay);
      expect(parStop.executions).toBe(oneStop.executions);
    }
  });
});

describe("parallel checkpoints", () => {
  const args = THREE_TASKS;
  const spec = { module: fixture, export: "fromSpec", args };

  /** Runs jobs in this thread, in submission order; aborts `ac` once `stopAfter` jobs finished. */
  function inProcess(stopAfter = Number.POSITIVE_INFINITY, ac?: AbortController) {
    let n = 0;
    return {
      ran: () => n,
      async run(input: JobInput): Promise<JobOutput> {
        const out = await runJob(input);
        if (++n >= stopAfter) ac?.abort();
        return out;
      },
      close: async () => {},
    };
  }

  it("a run stopped after k jobs resumes from its checkpoint to the uninterrupted counts", async () => {
    for (const strategy of ["dpor", "exhaustive"] as const) {
      const opts = { strategy, stopOnFirstViolation: false, splitDepth: 2, jobs: 2 };
      const w = inProcess();
      const whole = await exploreParallel(spec, { ...opts, transport: w });
      expect(whole.complete).toBe(true);
      expect(whole.executions).toBe(explore(fromSpec(args as never), opts).executions);
      expect(w.ran()).toBeGreaterThan(3);
      for (const k of [1, 2, Math.floor(w.ran() / 2)]) {
        const ac = new AbortController();
        const first = await exploreParallel(spec, {
          ...opts,
          transport: inProcess(k, ac),
          signal: ac.signal,
        });
        expect(first.complete).toBe(false);
        expect(first.cutBy).toContain("interrupted");
        // Through JSON, as a checkpoint file carries it.
        const cp = JSON.parse(JSON.stringify(first.checkpoint));
        const t = inProcess();
        const rest = await exploreParallel(spec, { ...opts, transport: t, resumeFrom: cp });
        expect(rest.complete).toBe(true);
        expect(rest.executions).toBe(whole.executions);
        expect(rest.steps).toBe(whole.steps);
        // The finished jobs were not run again.
        expect(t.ran()).toBeLessThan(w.ran());
      }
    }
  });

  it("refuses to resume a single-job checkpoint", async () => {
    const one = explore(fromSpec(args as never), { maxExecutions: 2, stopOnFirstViolation: false });
    await expect(exploreParallel(spec, { jobs: 2, resumeFrom: one.checkpoint })).rejects.toThrow(
      /single-job/,
    );
  });
});
