/**
 * Engine throughput benchmark. The micro-scenario is four tasks, each looping
 * doing a private READ_ONCE/WRITE_ONCE pair and a locked READ_ONCE/WRITE_ONCE
 * on a shared counter under a Spinlock: six shared accesses per iteration,
 * built from the real kernel primitives on a booted machine.
 *
 * Three rates, each the median of several timed runs after a warm-up:
 * - raw: the same number of steps from four bare generators yielding pre-built
 *   op objects, stepped round-robin by a plain loop (no runtime at all);
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

/** The baseline: generators yielding pre-built ops, stepped round-robin with no runtime. */
function rawRun(): number {
  const ops: AccessOp[] = [];
  const kinds = ["read", "write", "acquire", "read", "write", "release"] as const;
  for (let k = 0; k < OPS_PER_ITERATION; k++) {
    ops.push({ kind: kinds[k], obj: k, fn: "<task>", step: kinds[k] });
  }
  const body = function* (): Gen<void> {
    for (let i = 0; i < ITERATIONS; i++) {
      for (let k = 0; k < OPS_PER_ITERATION; k++) yield ops[k];
    }
  };
  const gens: Gen<void>[] = [];
  for (let t = 0; t < TASKS; t++) gens.push(body());
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

function main(): void {
  const json = process.argv.includes("--json");
  const started = process.hrtime.bigint();
  const recorded = runScenario(new RandomScheduler(SEED));
  const choices = recorded.choices;
  let seed = SEED;
  const random = (): number => runScenario(new RandomScheduler(seed++)).stats.steps;
  const replay = (): number => runScenario(new ReplayScheduler(choices)).stats.steps;

  // Rounds interleave the three measurements so that drift (JIT tiers, GC, a
  // busy neighbour) hits all three alike; the ratios are taken per round.
  const raw: number[] = [];
  const rnd: number[] = [];
  const rep: number[] = [];
  const repRatio: number[] = [];
  const rndRatio: number[] = [];
  for (let round = 0; round < WARMUP + REPEAT; round++) {
    const a = rate(rawRun);
    const b = rate(random);
    const c = rate(replay);
    if (round < WARMUP) continue;
    raw.push(a);
    rnd.push(b);
    rep.push(c);
    repRatio.push(c / a);
    rndRatio.push(b / a);
  }
  const rawStepsPerSec = median(raw);
  const randomStepsPerSec = median(rnd);
  const replayStepsPerSec = median(rep);
  const replayToRaw = median(repRatio);
  const randomToRaw = median(rndRatio);
  const elapsedSec = Number(process.hrtime.bigint() - started) / 1e9;

  const out = {
    scenario: `${TASKS} tasks x ${ITERATIONS} iterations x ${OPS_PER_ITERATION} ops (READ_ONCE/WRITE_ONCE, spin_lock/spin_unlock)`,
    stepsPerRun: STEPS,
    choicesPerRun: choices.length,
    repeats: REPEAT,
    rawStepsPerSec: Math.round(rawStepsPerSec),
    randomStepsPerSec: Math.round(randomStepsPerSec),
    replayStepsPerSec: Math.round(replayStepsPerSec),
    replayToRaw: Number(replayToRaw.toFixed(3)),
    randomToRaw: Number(randomToRaw.toFixed(3)),
    target: 0.25,
    meetsTarget: replayToRaw >= 0.25,
    elapsedSec: Number(elapsedSec.toFixed(2)),
    node: process.version,
  };
  if (json) {
    console.log(JSON.stringify(out));
    return;
  }
  const fmt = (x: number): string => `${(x / 1e6).toFixed(2).padStart(8)} M steps/s`;
  console.log(`engine benchmark: ${out.scenario}, ${STEPS} steps per run, median of ${REPEAT}`);
  console.log(`  raw generators  ${fmt(rawStepsPerSec)}`);
  console.log(`  random          ${fmt(randomStepsPerSec)}   ${(randomToRaw * 100).toFixed(1)}% of raw`);
  console.log(
    `  replay          ${fmt(replayStepsPerSec)}   ${(replayToRaw * 100).toFixed(1)}% of raw (target 25%: ${out.meetsTarget ? "met" : "MISSED"})`,
  );
  console.log(`  (${out.elapsedSec} s)`);
}

main();
