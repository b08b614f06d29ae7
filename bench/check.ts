/**
 * bench:check — the checker's speed on every built-in scenario, with 1 and 2
 * jobs, against the replay step rate, and the time to the first counterexample
 * of every seed design known to be unsafe. `--json` prints one JSON object.
 */
import { fileURLToPath } from "node:url";
import { exploreAsync } from "../src/engine/explore/explore.js";
import { exploreParallel } from "../src/engine/explore/parallel.js";
import { runProgram } from "../src/engine/runtime.js";
import { RandomScheduler, ReplayScheduler } from "../src/engine/scheduler.js";
import { BUILTIN_SCENARIOS } from "../src/scenarios/builtin/index.js";
import { builtinProgram } from "../src/scenarios/program-factory.js";
import { checkSeedDesign } from "../src/scenarios/seed-report.js";
import { SEED_DESIGNS } from "../src/scenarios/seeds.js";
import { formatReach, reachRows } from "./reach.js";

const json = process.argv.includes("--json");
const MAX_EXECUTIONS = 3000;
const factory = fileURLToPath(new URL("../src/scenarios/program-factory.ts", import.meta.url));

function replayStepsPerSec(scenario: string): number {
  const program = builtinProgram({ scenario });
  const rec = runProgram(program, { scheduler: new RandomScheduler(1) });
  let steps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 300) {
    steps += runProgram(program, { scheduler: new ReplayScheduler(rec.choices) }).stats.steps;
  }
  return steps / ((performance.now() - t0) / 1000);
}

const scenarios = [];
for (const s of BUILTIN_SCENARIOS) {
  const program = builtinProgram({ scenario: s.name });
  const opts = { strategy: "dpor" as const, maxExecutions: MAX_EXECUTIONS, stopOnFirstViolation: false };
  await exploreAsync(program, { ...opts, maxExecutions: 200 }); // warm-up
  const one = await exploreAsync(program, opts);
  const two = await exploreParallel(
    { module: factory, export: "builtinProgram", args: { scenario: s.name } },
    { ...opts, jobs: 2 },
  );
  const r1 = one.executions / (one.elapsedMs / 1000);
  const r2 = two.executions / (two.elapsedMs / 1000);
  const replay = replayStepsPerSec(s.name);
  const steps1 = one.steps / (one.elapsedMs / 1000);
  scenarios.push({
    scenario: s.name,
    kernel: s.defaultKernel,
    complete: one.complete,
    executions: one.executions,
    jobs1: {
      executionsPerSec: Math.round(r1),
      stepsPerSec: Math.round(steps1),
      elapsedMs: Math.round(one.elapsedMs),
    },
    jobs2: {
      executionsPerSec: Math.round(r2),
      stepsPerSec: Math.round(two.steps / (two.elapsedMs / 1000)),
      elapsedMs: Math.round(two.elapsedMs),
    },
    speedup: Number((r2 / r1).toFixed(2)),
    replayStepsPerSec: Math.round(replay),
    dporToReplay: Number((steps1 / replay).toFixed(3)),
  });
  if (!json) console.error(`measured ${s.name}`);
}

const firstCounterexample = [];
for (const d of SEED_DESIGNS.filter((x) => x.expected === "unsafe")) {
  const row = await checkSeedDesign(d, { shrink: false });
  firstCounterexample.push({
    thread: d.thread,
    variant: d.variant,
    verdict: row.verdict,
    executions: row.executions,
    ms: row.elapsedMs,
  });
}

const reach = await reachRows((r) => {
  if (!json) console.error(`measured reach ${r.scenario} ${r.variant ?? ""}`);
});

const result = {
  maxExecutions: MAX_EXECUTIONS,
  scenarios,
  firstCounterexample,
  reach,
  node: process.version,
};
if (json) console.log(JSON.stringify(result));
else {
  console.log(
    "scenario                       complete  exec/s(1)  steps/s(1)  exec/s(2)  speedup  dpor/replay",
  );
  for (const s of scenarios) {
    console.log(
      `${s.scenario.padEnd(30)} ${String(s.complete).padEnd(9)} ${String(s.jobs1.executionsPerSec).padStart(9)}  ${String(s.jobs1.stepsPerSec).padStart(10)}  ${String(s.jobs2.executionsPerSec).padStart(9)}  ${String(s.speedup).padStart(7)}  ${s.dporToReplay}`,
    );
  }
  console.log("\nfirst counterexample of each unsafe seed design:");
  for (const f of firstCounterexample)
    console.log(
      `  ${f.thread} ${String(f.variant).padEnd(36)} ${f.verdict} after ${f.executions} executions, ${f.ms} ms`,
    );
  console.log("\nreach: the whole protocol per era, and known bugs in it:");
  console.log(formatReach(reach));
}
process.exit(0);
