import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { EXIT } from "./exit-codes.js";
import { moduleDir, runBuilt, scenarioModule } from "./test-procs.js";

/**
 * An exception in the user's own module is the user's error (issue 13): exit 4, "error in your
 * module at FILE:LINE:COL", the step and a replay string; never 70 with a race diagram. Through the
 * built CLI, with the modules in a directory outside the checkout.
 */
const write = moduleDir("tdplab-user-error-");

const run = (...args: string[]) => runBuilt(args);

/**
 * Start the CLI and send `signal` once `ready()` holds (polled); the exit code, the output and the
 * ms from the signal to the exit.
 */
function runAndSignal(
  ready: () => boolean,
  signal: NodeJS.Signals,
  ...args: string[]
): Promise<{ code: number; text: string; ms: number }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["dist/cli/bin.js", ...args]);
    let text = "";
    p.stdout.on("data", (d) => {
      text += d;
    });
    p.stderr.on("data", (d) => {
      text += d;
    });
    let sentAt = 0;
    const poll = setInterval(() => {
      if (!ready()) return;
      clearInterval(poll);
      sentAt = performance.now();
      p.kill(signal);
    }, 50);
    // Deaf to the signal: fail instead of hanging the suite.
    const hard = setTimeout(() => p.kill("SIGKILL"), 60_000);
    p.on("exit", (code) => {
      clearInterval(poll);
      clearTimeout(hard);
      resolve({ code: code ?? -1, text, ms: performance.now() - sentAt });
    });
  });
}

const variant = (name: string, override: string) =>
  write(
    `${name}.mjs`,
    `import { writeFileSync } from "node:fs"; import { defineVariant } from "tdplab";
export default defineVariant({
  name: "${name}",
  description: "test",
  overrides: {
${override}
  },
});
`,
  );

const scenario = (name: string, build: string) => scenarioModule(write, name, build);

describe.runIf(existsSync("dist/cli/bin.js"))("the user's errors are the user's", () => {
  it("an exception in an override: its file:line:col, the model function, the step, a replay string", () => {
    const f = variant(
      "throws",
      `    *kvm_tdp_mmu_put_root(original, kvm, root, shared = false) {
      const x = undefined;
      x.boom();
      yield* original(kvm, root, shared);
    },`,
    );
    const r = run("check", "seed-003-put-root", "--kernel", "v5.18", "--variant", f);
    expect(r.code).toBe(EXIT.userError);
    expect(r.text).toContain(`error in your module at ${f}:8:9: TypeError`);
    expect(r.text).toMatch(/at step \d+, in task \S+, in kvm_tdp_mmu_put_root\(\)/);
    expect(r.text).toMatch(/replay: tdp1\./);
    expect(r.text).not.toContain("race diagram");
  });

  it("an override that is not a generator function", () => {
    const f = variant("notgen", "    kvm_tdp_mmu_put_root(original, kvm, root) { return 1; },");
    const r = run("check", "seed-003-put-root", "--kernel", "v5.18", "--variant", f);
    expect(r.code).toBe(EXIT.userError);
    expect(r.text).toContain("the override of kvm_tdp_mmu_put_root returned number 1, not a generator");
    expect(r.text).not.toContain("is not iterable");
  });

  it("spawn() given a generator function instead of a generator object", () => {
    const f = scenario("spawnfn", `    spawn("t", function* () { yield* READ_ONCE(a); });`);
    const r = run("check", f);
    expect(r.code).toBe(EXIT.userError);
    expect(r.text).toContain(`error in your module at ${f}:8:`);
    expect(r.text).toContain('spawn("t", …): a task body must be a generator object');
    expect(r.text).toContain("in the scenario's setup");
  });

  it("a task of the user's scenario that throws, and its replay, which fails the same way", () => {
    const f = scenario(
      "taskthrow",
      `    spawn("t", (function* () { if ((yield* READ_ONCE(a)) === 0) throw new RangeError("bad value"); })());`,
    );
    const r = run("check", f, "--json");
    expect(r.code).toBe(EXIT.userError);
    const doc = JSON.parse(r.text.slice(0, r.text.lastIndexOf("}") + 1));
    expect(doc.violation.invariant).toBe("user-error");
    const replay = run("replay", doc.violation.replay, "--scenario", f);
    expect(replay.code).toBe(EXIT.userError);
    expect(replay.text).toContain(`error in your module at ${f}:8:`);
  });

  for (const ext of ["mjs", "ts"]) {
    it(`a syntax error in a .${ext} variant: its file:line:col, exit 2`, () => {
      const f = write(
        `syntax.${ext}`,
        `import { defineVariant } from "tdplab";
export default defineVariant({
  name: "syntax",
  description: "test",
  overrides: { *kvm_tdp_mmu_put_root(original, kvm, root) { yield* original(kvm, root; } },
});
`,
      );
      const r = run("check", "seed-003-put-root", "--variant", f);
      expect(r.code).toBe(EXIT.usage);
      expect(r.text).toContain(`cannot load variant module: ${f}:5:86: Expected ")" but found ";"`);
    });
  }

  describe("a loop of the user's that never reaches a primitive", () => {
    // It leaves a mark on disk as it enters the loop, so a test knows when to press Ctrl-C.
    const mark = write("spinning", "");
    const loop = variant(
      "spins",
      `    *kvm_tdp_mmu_put_root(original, kvm, root, shared = false) {
      writeFileSync(${JSON.stringify(mark)}, "");
      for (;;) {}
      yield* original(kvm, root, shared);
    },`,
    );
    const checkLoop = ["check", "seed-003-put-root", "--kernel", "v5.18", "--variant", loop];
    const named = /task \S+ in kvm_tdp_mmu_put_root\(\) ran \d+ ms without reaching a primitive/;

    it("--time-limit stops it: the user's error, naming task and function, with a replay that stalls the same way", () => {
      const r = run(...checkLoop, "--time-limit", "2", "--json");
      expect(r.code).toBe(EXIT.userError);
      const doc = JSON.parse(r.text.slice(0, r.text.lastIndexOf("}") + 1));
      expect(doc.cutBy).toEqual(["time-limit"]);
      expect(doc.violation.invariant).toBe("user-error");
      expect(doc.violation.message).toMatch(named);
      expect(doc.violation.fn).toBe("kvm_tdp_mmu_put_root");
      expect(doc.violation.replay).toMatch(/^tdp1\./);
      const replay = run("replay", doc.violation.replay, "--variant", loop, "--step-timeout", "1000");
      expect(replay.code).toBe(EXIT.userError);
      expect(replay.text).toMatch(named);
    });

    it("--step-timeout stops it without a time limit, and the human report has the seed and replay", () => {
      const r = run(...checkLoop, "--step-timeout", "1000");
      expect(r.code).toBe(EXIT.userError);
      expect(r.text).toMatch(named);
      expect(r.text).toContain("cut by step-timeout");
      expect(r.text).toMatch(/replay: tdp1\./);
      expect(r.text).toContain("seed 0x");
    });

    it("Ctrl-C stops it within a second or two: exit 130, naming the loop", async () => {
      rmSync(mark, { force: true });
      const r = await runAndSignal(
        () => existsSync(mark),
        "SIGINT",
        ...checkLoop,
        "--step-timeout",
        "600000",
      );
      expect(r.code).toBe(EXIT.interrupted);
      expect(r.text).toMatch(named);
      expect(r.text).toContain("cut by interrupted");
      expect(r.ms).toBeLessThan(5000);
    });

    it("a scenario task that spins in its own body, after a choice: named, and replayed to the same stall", () => {
      const f = scenario(
        "spinbody",
        `    spawn("reader", (function* () { yield* READ_ONCE(a); })());
    spawn("spinner", (function* () { if ((yield* READ_ONCE(a)) === 0) for (;;) {} })());`,
      );
      const r = run("check", f, "--step-timeout", "1000", "--json");
      expect(r.code).toBe(EXIT.userError);
      const doc = JSON.parse(r.text.slice(0, r.text.lastIndexOf("}") + 1));
      expect(doc.violation.message).toMatch(
        /task spinner in its own body ran \d+ ms without reaching a primitive/,
      );
      const replay = run("replay", doc.violation.replay, "--scenario", f, "--step-timeout", "1000");
      expect(replay.code).toBe(EXIT.userError);
      expect(replay.text).toContain("task spinner in its own body");
    });
  });
});
