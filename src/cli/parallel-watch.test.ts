import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { encodeReplayToken } from "../trace/replay-token.js";
import { EXIT } from "./exit-codes.js";
import { moduleDir, type Proc, runBuilt, scenarioModule, startRedis, tdplab, until } from "./test-procs.js";

/**
 * The watchdog of issue 13 for parallel runs (issue 15): a loop of the user's that never reaches a
 * primitive stops a `--jobs` or `--queue` run with the same user error and exit code as a one-job
 * run; a module that loops at import time is the user's error too; and a counterexample found
 * before a run had to be killed is printed. Through the built CLI, with the modules outside the
 * checkout.
 */
const write = moduleDir("tdplab-parallel-watch-");

// A hang must fail the test, not stall the suite.
const run = (...args: string[]) => runBuilt(args, 90_000);

/** Each test runs the CLI several times, each starting threads that load the model: minutes on a busy machine. */
const SLOW = 240_000;

const jsonOf = (text: string) => JSON.parse(text.slice(0, text.lastIndexOf("}") + 1));

const scenario = (name: string, build: string) => scenarioModule(write, name, build);

/** A task that loops in its own body once it has read 0: only in runs a job does, not in the coordinator's probe. */
const spinner = scenario(
  "spinbody",
  `    spawn("reader", (function* () { yield* READ_ONCE(a); yield* WRITE_ONCE(a, 1); })());
    spawn("spinner", (function* () { yield* READ_ONCE(b); if ((yield* READ_ONCE(a)) === 0) for (;;) {} })());`,
);
/** A one-job check of the spinner, as every test here runs it (a short step timeout). */
const SPIN_CHECK = ["check", spinner, "--strategy", "dpor", "--step-timeout", "1000"];
const named = /task spinner in its own body ran \d+ ms without reaching a primitive/;

describe.runIf(existsSync("dist/cli/bin.js"))("parallel runs of the user's code are watched", () => {
  it(
    "--jobs 2: a job's loop stops the run as in one job (exit 4, named, replay), within seconds",
    () => {
      const one = run(...SPIN_CHECK, "--json");
      expect(one.code).toBe(EXIT.userError);
      const r = run(...SPIN_CHECK, "--jobs", "2", "--json");
      expect(r.code).toBe(EXIT.userError);
      const doc = jsonOf(r.text);
      expect(doc.violation.invariant).toBe("user-error");
      expect(doc.violation.message).toMatch(named);
      expect(doc.cutBy).toEqual(["step-timeout"]);
      // The replay string of the stalled run stalls the same way.
      const replay = run("replay", doc.violation.replay, "--scenario", spinner, "--step-timeout", "1000");
      expect(replay.code).toBe(EXIT.userError);
      expect(replay.text).toMatch(named);
      // Start-up of the threads included (tsx, busy machine): seconds, not forever.
      expect(r.ms).toBeLessThan(60_000);
    },
    SLOW,
  );

  it(
    "a module whose top-level code never finishes: the user's error after the step timeout",
    () => {
      const f = write(
        "toplevel.mjs",
        `import { defineVariant } from "tdplab";
for (;;) {}
export default defineVariant({ name: "toplevel", description: "test", overrides: {} });
`,
      );
      for (const jobs of ["1", "2"]) {
        const r = run("check", "seed-003-put-root", "--variant", f, "--step-timeout", "1000", "--jobs", jobs);
        expect(r.code).toBe(EXIT.userError);
        expect(r.text).toMatch(new RegExp(`importing ${f} ran \\d+ ms without finishing`));
      }
      const s = write("toplevel-scenario.mjs", "for (;;) {}\nexport default {};\n");
      const r = run("check", s, "--step-timeout", "1000", "--json");
      expect(r.code).toBe(EXIT.userError);
      expect(jsonOf(r.text).violation.message).toMatch(/importing .* ran \d+ ms without finishing/);
      // replay and simulate import the module before anything else too.
      const token = encodeReplayToken({ header: { s: "seed-003-put-root", k: "v5.18" }, choices: [] });
      const replay = run("replay", token, "--variant", f, "--step-timeout", "1000");
      expect(replay.code).toBe(EXIT.userError);
      expect(replay.text).toMatch(/replay: error in your module: importing .* ran \d+ ms without finishing/);
      const sim = run("simulate", "defunct-root-zap", "--variant", f, "--step-timeout", "1000");
      expect(sim.code).toBe(EXIT.userError);
      expect(sim.text).toMatch(/simulate: error in your module: importing .* ran \d+ ms without finishing/);
    },
    SLOW,
  );

  it(
    "a counterexample found before the run had to be killed is printed, and replays to the violation",
    () => {
      // The violation needs a preemption; the shrinker's search without preemptions reaches the loop.
      const f = scenario(
        "found",
        `    spawn("writer", (function* () { yield* WRITE_ONCE(b, 1); yield* WRITE_ONCE(a, 1); })());
    spawn("checker", (function* () {
      const vb = yield* READ_ONCE(b);
      const va = yield* READ_ONCE(a);
      WARN_ON(vb === 1 && va === 0, "b without a");
      if (vb === 0 && va === 0) for (;;) {}
    })());`,
      );
      for (const jobs of ["1", "2"]) {
        const r = run("check", f, "--strategy", "dpor", "--step-timeout", "1000", "--jobs", jobs, "--json");
        expect(r.code).toBe(EXIT.userError);
        const doc = jsonOf(r.text);
        expect(doc.violation.message).toMatch(/task checker in its own body ran \d+ ms/);
        expect(doc.counterexample).toMatch(/^tdp1\./);
        const replay = run("replay", doc.counterexample, "--scenario", f);
        expect(replay.code).toBe(EXIT.violation);
        expect(replay.text).toContain("WARN_ON(b without a)");
      }
    },
    SLOW,
  );
});

const hasRedis = spawnSync("redis-server", ["--version"]).status === 0;

describe.runIf(hasRedis)("check --queue: a queue worker's item that loops", () => {
  it(
    "stops the run with the user's error, naming the loop, and the worker lives on",
    async () => {
      const redis = await startRedis();
      let worker: Proc | null = null;
      try {
        worker = tdplab(["worker", "--queue", redis.url, "--concurrency", "2"]);
        const w = worker;
        await until(() => w.stderr.includes("tdplab worker"), 60_000, "a worker to connect");
        const coord = tdplab([...SPIN_CHECK, "--queue", redis.url, "--json"]);
        expect(await coord.exited).toBe(EXIT.userError);
        expect(jsonOf(coord.stdout).violation.message).toMatch(named);
        expect(w.stderr).toMatch(/without reaching a primitive/);
        expect(w.child.exitCode).toBeNull();
      } finally {
        worker?.child.kill("SIGKILL");
        redis.proc.child.kill("SIGKILL");
      }
    },
    SLOW,
  );
});
