/**
 * Engine throughput benchmark. The micro-scenario is four tasks, each looping
 * doing a private READ_ONCE/WRITE_ONCE pair and a locked READ_ONCE/WRITE_ONCE
 * on a shared counter under a Spinlock: six shared accesses per iteration,
 * built from the real kernel primitives on a booted machine.
 *
 * Four rates, each the median over interleaved rounds after warm-up rounds:
 * - raw: the scenario's task generators with runtime and kernel taken out: the
 *   same loop making the same six delegated (yield*) primitive calls, each a
 *   fresh generator yielding a pre-built op, stepped round-robin by a bare
 *   loop. This is the baseline of the 25% target: it keeps the generator
 *   mechanics every kernel primitive has, and removes everything else;
 * - raw flat: the same ops yielded by one flat generator per task (no
 *   delegation), for reference: it shows what yield* itself costs;
 * - random: the runtime under RandomScheduler;
 * - replay: the runtime under ReplayScheduler, following a recorded random run.
 *
 * Usage: npm run --silent bench:engine [-- --json]
 */
import type { AccessOp, Gen } from "../src/engine/op.js";
import { type Program, type RunResult, runProgram } from "../src/engine/runtime.js";
import { RandomScheduler, ReplayScheduler, type Scheduler } from "../src/engine/scheduler.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "../src/kernel/atomic.js";
import { bootMachine } from "../src/kernel/machine.js";
import { Spinlock, spin_lock, spin_unlock } from "../src/kernel/spinlock.js";

const TASKS = 4;
const ITERATIONS = 5000;
const OPS_PER_ITERATION = 6;
const STEPS = TASKS * ITERATIONS * OPS_PER_ITERATION;
const SEED = 0x5eedn;
const WARMUP = 5;
const REPEAT = 25;
/** Replay should step at least this fraction of the raw rate. */
const TARGET = 0.25;

/** Four kernel tasks contending on one spinlock-protected counter. */
function scenario(iterations: number): Program {
  return ({ spawn }) => {
    bootMachine({ needResched: "never" });
    const lock = new Spinlock("lock");
    const counter = new Atomic("counter");
    for (let t = 0; t < TASKS; t++) {
      const mine = new Atomic(`private${t}`);
      spawn(
        `t${t}`,
        (function* (): Gen<void> {
          for (let i = 0; i < iterations; i++) {
            const p = yield* READ_ONCE(mine);
            yield* WRITE_ONCE(mine, p + 1);
            yield* spin_lock(lock);
            const v = yield* READ_ONCE(counter);
            yield* WRITE_ONCE(counter, v + 1);
            yield* spin_unlock(lock);
          }
        })(),
      );
    }
  };
}

function runScenario(scheduler: Scheduler): RunResult {
  const r = runProgram(scenario(ITERATIONS), { scheduler, maxSteps: STEPS + 1 });
  if (r.status !== "ok") throw new Error(`benchmark run failed: ${r.violations[0].message}`);
  if (r.stats.steps !== STEPS) throw new Error(`benchmark ran ${r.stats.steps} steps, expected ${STEPS}`);
  return r;
}

/**
 * Pre-built ops, one per access of an iteration, in the scenario's order:
 * private load and store, lock, shared load and store, unlock.
 */
const RAW_OPS: readonly AccessOp[] = (["read", "write", "acquire", "read", "write", "release"] as const).map(
  (kind, obj) => ({ kind, obj, objs: undefined, fn: "<task>", step: kind, enabled: undefined }),
);

/** Stand-in for one kernel primitive: a fresh generator yielding one pre-built op. */
function* rawAccess(k: number): Gen<number> {
  yield RAW_OPS[k];
  return k;
}

/**
 * The scenario's task generator with the runtime and the kernel taken out:
 * the same loop and the same six delegated primitive calls per iteration,
 * each yielding a pre-built op and doing no shared-state work.
 */
function* rawTask(): Gen<void> {
  for (let i = 0; i < ITERATIONS; i++) {
    yield* rawAccess(0);
    yield* rawAccess(1);
    yield* rawAccess(2);
    yield* rawAccess(3);
    yield* rawAccess(4);
    yield* rawAccess(5);
  }
}

/** The same number of pre-built ops yielded straight from one flat generator per task. */
function* rawFlatTask(): Gen<void> {
  for (let i = 0; i < ITERATIONS; i++) {
    for (let k = 0; k < OPS_PER_ITERATION; k++) yield RAW_OPS[k];
  }
}

/** A bare loop stepping four generators round-robin: no scheduler, no runtime, no kernel. */
function bareLoop(task: () => Gen<void>): number {
  const gens: Gen<void>[] = [];
  for (let t = 0; t < TASKS; t++) gens.push(task());
  let steps = 0;
  let live = TASKS;
  while (live > 0) {
    live = 0;
    for (let t = 0; t < TASKS; t++) {
      if (!gens[t].next().done) {
        steps++;
        live++;
      }
    }
  }
  return steps;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Steps per second of one call of `fn` (which returns the steps it took). */
function rate(fn: () => number): number {
  const t0 = process.hrtime.bigint();
  const steps = fn();
  return (steps * 1e9) / Number(process.hrtime.bigint() - t0);
}

interface Figures {
  raw: number;
  rawFlat: number;
  random: number;
  replay: number;
}

function main(): void {
  const json = process.argv.includes("--json");
  const started = process.hrtime.bigint();
  const choices = runScenario(new RandomScheduler(SEED)).choices;
  let seed = SEED;
  const measures: Record<keyof Figures, () => number> = {
    raw: () => bareLoop(rawTask),
    rawFlat: () => bareLoop(rawFlatTask),
    random: () => runScenario(new RandomScheduler(seed++)).stats.steps,
    replay: () => runScenario(new ReplayScheduler(choices)).stats.steps,
  };

  // Rounds interleave the measurements so that drift (JIT tiers, GC, a busy
  // neighbour) hits all of them alike; ratios are taken within each round.
  const rounds: Figures[] = [];
  for (let round = 0; round < WARMUP + REPEAT; round++) {
    const f: Figures = { raw: 0, rawFlat: 0, random: 0, replay: 0 };
    for (const k of Object.keys(measures) as (keyof Figures)[]) f[k] = rate(measures[k]);
    if (round >= WARMUP) rounds.push(f);
  }
  const med = (fn: (f: Figures) => number): number => median(rounds.map(fn));
  const replayToRaw = med((f) => f.replay / f.raw);
  const out = {
    scenario: `${TASKS} tasks x ${ITERATIONS} iterations x ${OPS_PER_ITERATION} accesses (READ_ONCE, WRITE_ONCE, spin_lock, spin_unlock)`,
    stepsPerRun: STEPS,
    choicesPerRun: choices.length,
    rounds: REPEAT,
    rawStepsPerSec: Math.round(med((f) => f.raw)),
    rawFlatStepsPerSec: Math.round(med((f) => f.rawFlat)),
    randomStepsPerSec: Math.round(med((f) => f.random)),
    replayStepsPerSec: Math.round(med((f) => f.replay)),
    replayToRaw: round3(replayToRaw),
    randomToRaw: round3(med((f) => f.random / f.raw)),
    replayToRawFlat: round3(med((f) => f.replay / f.rawFlat)),
    target: TARGET,
    meetsTarget: replayToRaw >= TARGET,
    elapsedSec: round3(Number(process.hrtime.bigint() - started) / 1e9),
    node: process.version,
  };
  if (json) {
    console.log(JSON.stringify(out));
    return;
  }
  const row = (name: string, x: number, ratio?: number): string =>
    `  ${name.padEnd(30)}${(x / 1e6).toFixed(2).padStart(8)} M steps/s${ratio === undefined ? "" : `  ${(ratio * 100).toFixed(1).padStart(5)}% of raw`}`;
  console.log(`engine benchmark: ${out.scenario}`);
  console.log(`${STEPS} steps per run, ${out.choicesPerRun} recorded choices, median of ${REPEAT} rounds`);
  console.log(row("raw (delegating generators)", out.rawStepsPerSec));
  console.log(row("raw flat (one generator/task)", out.rawFlatStepsPerSec));
  console.log(row("random scheduler", out.randomStepsPerSec, out.randomToRaw));
  console.log(row("replay scheduler", out.replayStepsPerSec, out.replayToRaw));
  console.log(
    `replay/raw ${(out.replayToRaw * 100).toFixed(1)}% (target ${TARGET * 100}%: ${out.meetsTarget ? "met" : "MISSED"}); replay/raw flat ${(out.replayToRawFlat * 100).toFixed(1)}%; ${out.elapsedSec} s`,
  );
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

main();
