import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Command } from "@commander-js/extra-typings";
import { isParallelCheckpoint } from "../../engine/explore/parallel.js";
import type { Checkpoint, Strategy } from "../../engine/explore/types.js";
import { formatSeed } from "../../engine/rng.js";
import type { MemoryModel } from "../../kernel/machine.js";
import { modelFnNames } from "../../mmu/model-fns.js";
import {
  type CheckOutcome,
  type CheckRequest,
  type runCheck,
  runCheckAsync,
  runCheckParallel,
} from "../../scenarios/check.js";
import { CheckpointError, readCheckpointFile, writeCheckpointFile } from "../../scenarios/checkpoint-file.js";
import { isBuiltinScenarioName, isBuiltinVariantName } from "../../scenarios/content-hash.js";
import type { RunConfig } from "../../scenarios/define.js";
import { ScenarioError } from "../../scenarios/errors.js";
import type { ReplayFiles } from "../../scenarios/replay.js";
import { ResolveError, resolveScenario, resolveVariant, runConfigFor } from "../../scenarios/resolve.js";
import { writeChromeTrace } from "../../trace/perfetto-file.js";
import type { TraceDoc } from "../../trace/schema.js";
import type { SetExit } from "../commands.js";
import { EXIT, UsageError } from "../exit-codes.js";
import { formatCounterexample, formatCoverage, formatExploreSummary } from "../format-check.js";
import type { Out } from "../io.js";
import { collect, intFlag, machineFlags, seedFlag } from "../options.js";
import { QUEUE_VERSION, queueFlags } from "../queue-flags.js";
import { catchStopSignals, signalExit } from "../signals.js";
import {
  formatKilled,
  isKilled,
  killedDoc,
  needsWatchdog,
  runCheckWatched,
} from "../watched/check-watched.js";
import { importWatched } from "../watched/import-watched.js";
import { serveExplorer } from "./explore.js";

const STRATEGIES: readonly Strategy[] = ["portfolio", "dpor", "bounded", "pct", "random", "exhaustive"];

/** `tdplab check`: explore every interleaving of scenarios; report a shrunk counterexample. */
export function registerCheck(program: Command, out: Out, setExit: SetExit): void {
  program
    .command("check")
    .description("explore the interleavings of scenarios and report the first violation, shrunk")
    .argument("<scenario...>", "built-in scenario name, scenario file (.yaml/.json) or module (.ts/.js)")
    .option("--kernel <version>", "kernel preset (v5.17 v5.18 v6.4 v6.6 v6.9 v6.15)")
    .option(
      "--feature <NAME=on|off>",
      "override one feature on top of the preset (repeatable)",
      collect,
      [] as string[],
    )
    .option(
      "--variant <name|path>",
      "design under test: built-in variant name or a module overriding model functions",
    )
    .option(
      "--set <name=value>",
      "a scenario parameter, e.g. --set vcpus=3 (repeatable; `tdplab list` shows each scenario's)",
      collect,
      [] as string[],
    )
    .option(
      "--strategy <s>",
      "portfolio (dpor, with random and pct runs beside it for fast counterexamples) | dpor | bounded | pct | random | exhaustive",
      "portfolio",
    )
    .option("--preemptions <k>", "preemption bound for --strategy bounded")
    .option("--depth <d>", "steps per execution (depth bound)")
    .option("--pct-depth <d>", "bug depth for --strategy pct")
    .option("--max-executions <n>", "stop after n executions")
    .option("--time-limit <s>", "stop after s seconds")
    .option(
      "--step-timeout <ms>",
      "your module's code (a variant's override, a scenario's task) running this long without reaching a primitive is an error in your module",
      "5000",
    )
    .option("--seed <s>", "seed for pct/random (decimal or 0x-hex); printed either way")
    .option("--preemption <model>", "none | voluntary | full (CONFIG_PREEMPT*)")
    .option(
      "--memory-model <m>",
      "sc (default: every store visible at once) | tso (x86-TSO: per-CPU store buffers, explored by DPOR)",
    )
    .option(
      "--need-resched-budget <n>",
      "need_resched() may answer true n times per task (explored both ways)",
    )
    .option(
      "--hold-bound <n>",
      "L3: most SPTEs a task may change between yield points while holding mmu_lock or in RCU (default: one 1G SPTE and its subtree; none before 5.18)",
    )
    .option("--no-shrink", "report the first counterexample as found")
    .option("--steps", "also print every step of the counterexample")
    .option("--json", "print one JSON document on stdout")
    .option("--jsonl", "stream progress and result events as JSON lines")
    .option("--out <dir>", "write the counterexample trace (JSON) and a checkpoint there")
    .option("--perfetto <file>", "write the counterexample as Chrome Trace Event JSON (ui.perfetto.dev)")
    .option("--resume <file>", "continue an interrupted exhaustive run from its checkpoint")
    .option(
      "--checkpoint-every <s>",
      "write a checkpoint every s seconds (0: never), into --out DIR or the temp directory; one is also written on SIGINT, SIGTERM and SIGHUP",
      "60",
    )
    .option(
      "--jobs <n>",
      "split the exploration over n worker threads (any scenario and variant); with --queue, keep 2n items in flight (default 16)",
    )
    .option(
      "--queue <url>",
      "run the exploration on the workers of a Redis queue (redis://[USER:PASS@]HOST:PORT or rediss://…), started with `tdplab worker`",
    )
    .option("--queue-name <name>", "the queue's name on that Redis (default tdplab)")
    .option(
      "--split-depth <d>",
      "with --jobs or --queue: a fixed split, steps (choice points for exhaustive/bounded) the coordinator expands before it hands subtrees out (default: dpor splits adaptively, where the tree branches; the others at 4)",
    )
    .option("--fail-on-incomplete", "exit 3 when exploration was cut by a bound")
    .option("--coverage", "count, per model function, the executions that reached it")
    .option(
      "--plain-dependence",
      "ignore the primitives' declared commutativity and completions (cross-check a verdict; slower)",
    )
    .option("--explore", "serve the counterexample in the browser explorer (127.0.0.1) until Ctrl-C")
    .action(async (targets, o) => {
      const strategy = o.strategy as Strategy;
      if (!STRATEGIES.includes(strategy))
        throw new UsageError(`--strategy takes ${STRATEGIES.join("|")}, not '${o.strategy}'`);
      // pct and random draw a fresh seed per invocation (printed, so a run can be reproduced); the
      // portfolio's samples only speed up finding a counterexample, so the same command gives the
      // same answer unless --seed asks for another stream.
      const seed =
        seedFlag(o.seed) ?? (strategy === "portfolio" ? 0n : BigInt(Math.floor(Math.random() * 2 ** 52)));
      const machine = machineFlags(o);
      const timeLimit = intFlag("--time-limit", o.timeLimit, 1);
      if (o.json && o.jsonl) throw new UsageError("--json and --jsonl both print the result: give one");
      if (o.preemptions !== undefined && strategy !== "bounded")
        throw new UsageError(`--preemptions bounds --strategy bounded, not ${strategy}`);
      if (o.pctDepth !== undefined && strategy !== "pct" && strategy !== "portfolio")
        throw new UsageError(`--pct-depth is for --strategy pct or portfolio, not ${strategy}`);
      if (o.resume && targets.length > 1)
        throw new UsageError("--resume continues one run: give one scenario");
      const checkpointEvery = intFlag("--checkpoint-every", o.checkpointEvery, 0) ?? 60;
      const stepTimeoutMs = intFlag("--step-timeout", o.stepTimeout, 1) ?? 5000;
      // Ctrl-C, a kill or a closed terminal all stop the search cleanly, with a checkpoint.
      const caught = catchStopSignals();
      let worst: number = EXIT.ok;
      const docs: unknown[] = [];
      let perfettoFrom: string | null = null;
      let exploreDoc: TraceDoc | null = null;
      let exploreFiles: ReplayFiles = {};
      try {
        for (const target of targets) {
          let req: Parameters<typeof runCheck>[0];
          const checkpoint = { file: "", written: false };
          try {
            // A module of the user's runs its top-level code when imported: import it where a
            // watchdog can stop it before this thread does.
            const importStall = (what: "scenario" | "variant", ref: string | null) =>
              importWatched(what, ref, stepTimeoutMs, caught.signal);
            const loopAt = await importStall("scenario", target);
            const scenario = loopAt === null ? await resolveScenario(target) : null;
            const variantRef = o.variant ?? scenario?.variant ?? null;
            const loop = loopAt ?? (await importStall("variant", variantRef));
            if (loop !== null || scenario === null) {
              const head = {
                scenario: target,
                kernel: o.kernel ?? "",
                features: o.feature,
                variant: variantRef,
              };
              const doc = killedDoc({ ...head, strategy, seed: formatSeed(seed) }, loop!);
              if (o.json) docs.push(doc);
              else if (o.jsonl) out.data(JSON.stringify({ event: "result", ...doc }));
              else out.data(formatKilled(target, strategy, loop!));
              const stopSignal = caught.received();
              worst = Math.max(worst, stopSignal ? signalExit(stopSignal) : EXIT.userError);
              if (caught.signal.aborted) break;
              continue;
            }
            const variant = await resolveVariant(variantRef);
            const config = runConfigFor(scenario, variant, {
              kernel: o.kernel,
              features: o.feature,
              machine,
              params: parseParamFlags(o.set),
            });
            req = {
              scenario,
              variant,
              variantRef,
              config,
              featureFlags: o.feature,
              machineFlags: machine,
              shrink: o.shrink,
              explore: {
                strategy,
                seed,
                maxExecutions: intFlag("--max-executions", o.maxExecutions, 1),
                timeLimitMs: timeLimit === undefined ? undefined : timeLimit * 1000,
                maxSteps: intFlag("--depth", o.depth, 1),
                preemptionBound: intFlag("--preemptions", o.preemptions),
                pctDepth: intFlag("--pct-depth", o.pctDepth, 1),
                plainDependence: o.plainDependence === true,
                coverage: o.coverage === true,
                signal: caught.signal,
                onProgress: (p) => {
                  if (o.jsonl) out.data(JSON.stringify({ event: "progress", scenario: target, ...p }));
                  else
                    out.progress(
                      `${target}: ${p.executions} executions, ${Math.round((p.executions * 1000) / Math.max(1, p.elapsedMs))}/s, depth ${p.depth}, ${(p.elapsedMs / 1000).toFixed(1)} s`,
                    );
                },
              },
            };
            if (o.resume)
              req = { ...req, explore: { ...req.explore, resumeFrom: readCheckpointFile(o.resume, req) } };
            const base = req;
            const file = checkpointPath(o.out, req.scenario.scenario.name);
            checkpoint.file = file;
            if (checkpointEvery > 0)
              req = {
                ...req,
                explore: {
                  ...req.explore,
                  checkpointEveryMs: checkpointEvery * 1000,
                  onCheckpoint: (c) => {
                    writeCheckpointAt(file, base, c);
                    if (!checkpoint.written) out.info(`checkpoint: ${file} (every ${checkpointEvery} s)`);
                    checkpoint.written = true;
                  },
                },
              };
          } catch (e) {
            if (e instanceof ScenarioError) throw new UsageError(e.report());
            if (e instanceof ResolveError) throw new UsageError(e.message);
            if (e instanceof CheckpointError) throw new UsageError(e.message);
            throw e;
          }
          const jobsFlag = intFlag("--jobs", o.jobs, 1);
          const queue = o.queue === undefined ? undefined : queueFlags(o.queue, o.queueName);
          const jobs = jobsFlag ?? (queue ? 16 : 1);
          const maxJobs = 4 * availableParallelism();
          if (jobs > maxJobs && !queue)
            throw new UsageError(
              `--jobs ${jobs}: at most ${maxJobs} (4 x the ${availableParallelism()} CPUs this machine has)`,
            );
          const parallel = jobs > 1 || queue !== undefined;
          const resumed = req.explore.resumeFrom;
          if (resumed !== undefined && isParallelCheckpoint(resumed) !== parallel)
            throw new UsageError(
              parallel
                ? `--resume: '${o.resume}' is the checkpoint of a one-job run: resume it without --jobs and --queue`
                : `--resume: '${o.resume}' is the checkpoint of a parallel run: resume it with --jobs N (N > 1) or --queue`,
            );
          // The user's own code runs in a thread a watchdog can stop (a loop that never yields would
          // otherwise hang this one, deaf to Ctrl-C); tdplab's own models run here.
          const splitDepth = intFlag("--split-depth", o.splitDepth, 1);
          // With --jobs or --queue the coordinator runs there too, and watches every job's thread.
          const ran = needsWatchdog(req)
            ? await runCheckWatched(
                req,
                stepTimeoutMs,
                parallel
                  ? { jobs, splitDepth, queue: queue && { ...queue, version: QUEUE_VERSION } }
                  : undefined,
                (line) => out.info(line),
              )
            : parallel
              ? await runCheckParallel(
                  req,
                  jobs,
                  queue && { ...queue, version: QUEUE_VERSION, note: (line) => out.info(line) },
                  splitDepth,
                )
              : await runCheckAsync(req);
          out.endProgress();
          if (isKilled(ran)) {
            const stopSignal = caught.received();
            const code = stopSignal
              ? signalExit(stopSignal)
              : ran.stall
                ? EXIT.userError
                : ran.counterexample
                  ? EXIT.violation
                  : o.failOnIncomplete
                    ? EXIT.inconclusive
                    : EXIT.ok;
            worst = Math.max(worst, code);
            const head = {
              scenario: target,
              kernel: req.config.kernel,
              memoryModel: memoryModelOf(req.config),
              features: o.feature,
              variant: req.variantRef,
              strategy,
              seed: formatSeed(seed),
            };
            if (o.json) docs.push(killedDoc(head, ran));
            else if (o.jsonl) out.data(JSON.stringify({ event: "result", ...killedDoc(head, ran) }));
            else {
              out.data(formatKilled(labelOf(target, req.config, req.variantRef), strategy, ran));
              printSeed(out, strategy, seed);
            }
            if (caught.signal.aborted) break;
            continue;
          }
          const outcome = ran;
          // The final checkpoint goes where the periodic ones went (or where --out or a signal asks);
          // a finished search leaves none behind.
          const finalCp = outcome.explore.complete ? undefined : outcome.explore.checkpoint;
          const stopSignal = caught.received();
          if (finalCp && (checkpoint.written || o.out || stopSignal)) {
            writeCheckpointAt(checkpoint.file, req, finalCp);
            checkpoint.written = true;
          } else if (checkpoint.written || (o.out && !finalCp)) {
            // Nothing left to resume: a checkpoint at this run's path would only be stale.
            rmSync(checkpoint.file, { force: true });
            checkpoint.written = false;
          }
          const code = stopSignal
            ? signalExit(stopSignal)
            : exitFor(outcome, o.failOnIncomplete === true, caught.signal.aborted);
          worst = Math.max(worst, code);
          const doc = jsonDoc(target, req.config, o.feature, req.variantRef, strategy, seed, outcome);
          if (o.out) writeArtifacts(o.out, req.scenario.scenario.name, outcome);
          if (o.perfetto && outcome.counterexample) {
            // One file: the first counterexample found across the targets.
            if (perfettoFrom === null) {
              writePerfetto(o.perfetto, outcome.counterexample.trace);
              perfettoFrom = target;
              out.info(`wrote ${o.perfetto} (${target}): open it in https://ui.perfetto.dev`);
            } else
              out.info(
                `--perfetto: ${target}'s counterexample not written (${o.perfetto} holds ${perfettoFrom}'s)`,
              );
          }
          if (outcome.counterexample && exploreDoc === null) {
            exploreDoc = outcome.counterexample.trace;
            // The explorer may regenerate traces of these files (they are the user's own).
            exploreFiles = {
              scenario: isBuiltinScenarioName(target) ? undefined : target,
              variant: req.variantRef && !isBuiltinVariantName(req.variantRef) ? req.variantRef : undefined,
            };
          }
          if (o.json) docs.push(doc);
          else if (o.jsonl) out.data(JSON.stringify({ event: "result", ...doc }));
          else
            printHuman(
              out,
              target,
              req.config,
              req.variantRef,
              seed,
              outcome,
              o.steps === true,
              checkpoint.written ? checkpoint.file : null,
            );
          if (caught.signal.aborted) break;
        }
      } finally {
        caught.release();
      }
      if (o.perfetto && perfettoFrom === null) out.info(`no counterexample: ${o.perfetto} not written`);
      if (o.json)
        out.data(JSON.stringify(docs.length === 1 ? docs[0] : { schemaVersion: 1, results: docs }, null, 2));
      if (o.explore && exploreDoc)
        await serveExplorer(
          out,
          { kind: "check", doc: exploreDoc },
          undefined,
          "info",
          undefined,
          exploreFiles,
        );
      else if (o.explore) out.info("--explore: no counterexample to show");
      setExit(worst);
    });
}

function exitFor(o: CheckOutcome, failOnIncomplete: boolean, interrupted: boolean): number {
  const inv = o.status === "violation" ? o.counterexample?.trace.violation?.invariant : undefined;
  if (inv === "model-error") return EXIT.internal;
  if (inv === "user-error") return EXIT.userError;
  if (o.status === "violation") return EXIT.violation;
  if (interrupted) return EXIT.interrupted;
  if (o.status === "inconclusive" && failOnIncomplete) return EXIT.inconclusive;
  return EXIT.ok;
}

function jsonDoc(
  scenario: string,
  config: RunConfig,
  features: readonly string[],
  variant: string | null,
  strategy: string,
  seed: bigint,
  o: CheckOutcome,
) {
  const ce = o.counterexample;
  return {
    schemaVersion: 1,
    status: o.status,
    complete: o.explore.complete,
    cutBy: o.explore.cutBy,
    kernel: config.kernel,
    memoryModel: memoryModelOf(config),
    features,
    variant,
    scenario,
    strategy,
    seed: formatSeed(seed),
    stats: {
      executions: o.explore.executions,
      steps: o.explore.steps,
      elapsedMs: o.explore.elapsedMs,
      ...o.explore.stats,
    },
    violation: ce
      ? {
          invariant: ce.trace.violation?.invariant,
          message: ce.trace.violation?.message,
          replay: ce.replay,
          shrunk: ce.shrunk,
          trace: ce.trace,
        }
      : null,
    depthCutReplay: o.depthCutReplay,
    suspectedLivelock: o.suspectedLivelock,
    warnings: o.warnings,
    ...(o.explore.stats.coverage === undefined
      ? {}
      : { coverageNotReached: modelFnNames().filter((n) => o.explore.stats.coverage?.[n] === undefined) }),
  };
}

function writePerfetto(file: string, trace: Parameters<typeof writeChromeTrace>[1]): void {
  try {
    writeChromeTrace(file, trace);
  } catch (e) {
    throw new UsageError(`--perfetto: cannot write '${file}': ${(e as Error).message}`);
  }
}

function writeArtifacts(dir: string, name: string, o: CheckOutcome): void {
  mkdirSync(dir, { recursive: true });
  if (o.counterexample)
    writeFileSync(join(dir, `${name}.trace.json`), `${JSON.stringify(o.counterexample.trace, null, 1)}\n`);
}

/** Where a run's checkpoints go: --out DIR, or a file of this process in the temp directory. */
function checkpointPath(outDir: string | undefined, name: string): string {
  return outDir === undefined
    ? join(tmpdir(), "tdplab", `${name}.${process.pid}.checkpoint.json`)
    : join(outDir, `${name}.checkpoint.json`);
}

function writeCheckpointAt(file: string, req: CheckRequest, c: Checkpoint): void {
  mkdirSync(dirname(file), { recursive: true });
  writeCheckpointFile(file, req, c);
}

function printHuman(
  out: Out,
  target: string,
  config: RunConfig,
  variant: string | null,
  seed: bigint,
  o: CheckOutcome,
  steps: boolean,
  checkpointFile: string | null,
): void {
  out.data(formatExploreSummary(o, labelOf(target, config, variant)));
  for (const w of o.warnings) out.data(`warning: ${w}`);
  if (o.depthCutReplay !== null) {
    const n = o.explore.stats.depthCuts;
    out.data(
      `depth bound: ${n} execution${n === 1 ? "" : "s"} reached ${o.explore.stats.maxDepth} steps without finishing (a loop that never ends, or raise --depth); the longest: tdplab replay '${o.depthCutReplay}'`,
    );
    const l = o.suspectedLivelock;
    if (l !== null)
      out.data(
        `suspected livelock: from step ${l.fromStep} that run repeats one cycle of ${l.period} step${l.period === 1 ? "" : "s"} (${l.tasks.join(", ")}; in ${l.fns.join(", ")}) ${l.repeats} times, with no task finishing. Not a proof: tdplab sees the tasks' accesses, not their local variables, so it cannot tell that the cycle never ends (the verdict stays inconclusive)`,
      );
  }
  const cov = o.explore.stats.coverage;
  if (cov !== undefined) out.data(formatCoverage(cov, o.explore.executions));
  if (o.counterexample) {
    out.data(
      formatCounterexample(o.counterexample.trace, o.counterexample.replay, o.counterexample.shrunk, steps),
    );
  }
  if (o.explore.cutBy.includes("interrupted")) {
    out.info(`interrupted after ${o.explore.executions} executions (${o.explore.steps} steps)`);
    if (o.lastReplay) out.info(`last execution: tdplab replay '${o.lastReplay}'`);
  }
  if (o.explore.checkpoint && !o.explore.complete) {
    out.info(
      checkpointFile === null
        ? "to resume: save the checkpoint with --out DIR, then pass DIR/<scenario>.checkpoint.json to --resume"
        : `to resume: the same command with --resume ${checkpointFile}`,
    );
  }
  printSeed(out, o.explore.strategy, seed);
}

/** The scenario as the summary names it; the memory model only when it is not the default. */
function labelOf(target: string, config: RunConfig, variant: string | null): string {
  const mm = memoryModelOf(config);
  return `${target} [${config.kernel}${variant ? `, variant ${variant}` : ""}${mm === "sc" ? "" : `, ${mm}`}]`;
}

function memoryModelOf(config: RunConfig): MemoryModel {
  return config.machine.memoryModel ?? "sc";
}

/** Only the strategies that draw random numbers have a seed worth reprinting. */
function printSeed(out: Out, strategy: Strategy, seed: bigint): void {
  if (strategy === "portfolio" || strategy === "pct" || strategy === "random")
    out.info(`seed ${formatSeed(seed)} (--seed=${formatSeed(seed)} reproduces this run)`);
}

/** `--set name=value` pairs: integer scenario parameters. */
function parseParamFlags(flags: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of flags) {
    const m = /^([A-Za-z][A-Za-z0-9]*)=(-?\d+)$/.exec(f);
    if (m === null) throw new UsageError(`--set takes name=integer, not '${f}'`);
    out[m[1]] = Number(m[2]);
  }
  return out;
}
