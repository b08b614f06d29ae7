import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EXIT } from "./exit-codes.js";

/**
 * A run the depth bound cuts is a possible livelock (issue 13): check prints the replay string of
 * the first one (and puts it in --json), and that string replays to the same cut, reported as a
 * possible livelock. Through the built CLI, with a scenario module outside the checkout.
 */
const dir = mkdtempSync(join(tmpdir(), "tdplab-depth-cut-"));
const file = join(dir, "spin-forever.mjs");
writeFileSync(
  file,
  `import { Atomic, bootMachine, defineScenario, READ_ONCE, WRITE_ONCE } from "tdplab";
export default defineScenario({
  name: "spin-forever",
  description: "a waiter polls a flag that is only ever written with the value it waits past",
  build: () => ({ spawn }) => {
    bootMachine();
    const flag = new Atomic("flag", 0);
    spawn("poller", (function* () { while ((yield* READ_ONCE(flag)) === 0) {} })());
    spawn("other", (function* () { yield* WRITE_ONCE(flag, 0); })());
  },
});
`,
);

function run(...args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["dist/cli/bin.js", ...args], { encoding: "utf8" });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

describe.runIf(existsSync("dist/cli/bin.js"))("runs cut by the depth bound", () => {
  it("check names the longest cut run with a replay string that reproduces it", () => {
    const text = run("check", file, "--depth", "40");
    expect(text.stdout).toMatch(/depth bound: \d+ executions reached 40 steps without finishing/);
    expect(text.stdout).toContain("the longest: tdplab replay");
    const doc = JSON.parse(run("check", file, "--depth", "40", "--json").stdout);
    expect(doc.cutBy).toContain("depth");
    expect(doc.depthCutReplay).toMatch(/^tdp1\./);
    expect(text.stdout).toContain(`tdplab replay '${doc.depthCutReplay}'`);
    const replay = run("replay", doc.depthCutReplay, "--scenario", file);
    // Cut by the bound: inconclusive, never a violation.
    expect(replay.code).toBe(EXIT.inconclusive);
    expect(replay.stdout).toContain("40 steps");
    expect(replay.stdout).toContain("possible livelock");
    expect(replay.stdout).toMatch(
      /suspected livelock: from step \d+ one cycle of 1 steps \(poller, in <task>\) repeats \d+ times/,
    );
  });

  it("a cut run whose tail repeats one cycle is a suspected livelock: named, never a violation", () => {
    const text = run("check", file, "--depth", "40");
    expect(text.code).toBe(EXIT.ok);
    expect(text.stdout).toMatch(
      /suspected livelock: from step \d+ that run repeats one cycle of 1 step \(poller; in <task>\) \d+ times, with no task finishing\. Not a proof/,
    );
    const doc = JSON.parse(run("check", file, "--depth", "40", "--json", "--fail-on-incomplete").stdout);
    expect(doc.suspectedLivelock).toMatchObject({ period: 1, tasks: ["poller"], fns: ["<task>"] });
    expect(doc.suspectedLivelock.repeats).toBeGreaterThanOrEqual(30);
    expect(doc.status).toBe("inconclusive");
    const strict = run("check", file, "--depth", "40", "--fail-on-incomplete");
    expect(strict.code).toBe(EXIT.inconclusive);
  });

  it("a run cut by the bound that does not repeat (a counter that only grows) is no suspected livelock", () => {
    const counter = join(dir, "count-up.mjs");
    writeFileSync(
      counter,
      `import { Atomic, bootMachine, defineScenario, WRITE_ONCE } from "tdplab";
export default defineScenario({
  name: "count-up",
  description: "a task that writes ever more objects, once each",
  build: () => ({ spawn }) => {
    bootMachine();
    const xs = Array.from({ length: 60 }, (_, i) => new Atomic("x" + i, 0));
    spawn("counter", (function* () { for (const x of xs) yield* WRITE_ONCE(x, 1); })());
  },
});
`,
    );
    const doc = JSON.parse(run("check", counter, "--depth", "40", "--json").stdout);
    expect(doc.depthCutReplay).toMatch(/^tdp1\./);
    expect(doc.suspectedLivelock).toBeNull();
  });

  it("a run that finishes within the bound has no such line and a null depthCutReplay", () => {
    const doc = JSON.parse(run("check", "seed-003-put-root", "--kernel", "v5.18", "--json").stdout);
    expect(doc.depthCutReplay).toBeNull();
  });
});
