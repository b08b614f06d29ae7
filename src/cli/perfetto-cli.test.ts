import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

interface Ev {
  ph: string;
  name: string;
  tid: number;
  args?: Record<string, unknown>;
}

async function run(...argv: string[]) {
  const out = memoryOut();
  const code = await main(argv, out);
  return { code, stdout: out.stdout.join("\n"), stderr: out.stderr.join("\n") };
}

function readTrace(file: string): Ev[] {
  const t = JSON.parse(readFileSync(file, "utf8")) as { traceEvents: Ev[]; displayTimeUnit: string };
  expect(t.displayTimeUnit).toBe("ns");
  return t.traceEvents;
}

describe("--perfetto", () => {
  it("check writes the counterexample, and replay writes the same run", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-perfetto-"));
    const file = join(dir, "sub", "ce.json");
    const r = await run(
      "check",
      "seed-004-empty-rmap",
      "--variant",
      "rmap-unlock-readonly-writes-zero",
      "--perfetto",
      file,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`wrote ${file}`);
    const ev = readTrace(file);
    const inst = ev.filter((e) => e.ph === "i");
    expect(inst.map((e) => e.name)).toEqual(["inv19-rmap-lock-lost-entry"]);
    expect(ev.some((e) => e.ph === "M" && e.name === "thread_name")).toBe(true);
    expect(ev.some((e) => e.ph === "X")).toBe(true);

    const replay = /replay: (tdp1\.\S+)/.exec(r.stdout)![1];
    const file2 = join(dir, "replay.json");
    const again = await run("replay", replay, "--perfetto", file2);
    expect(again.code).toBe(1);
    expect(readFileSync(file2, "utf8")).toBe(readFileSync(file, "utf8"));
  });

  it("check with no counterexample writes nothing and says so", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-perfetto-"));
    const file = join(dir, "none.json");
    const r = await run("check", "seed-004-empty-rmap", "--perfetto", file);
    expect(r.code).toBe(0);
    expect(existsSync(file)).toBe(false);
    expect(r.stderr).toContain("no counterexample");
  });

  it("an unwritable path is a usage error, not a crash", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tdplab-perfetto-"));
    const r = await run("replay", await replayOf(), "--perfetto", dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--perfetto: cannot write");
  });
});

async function replayOf(): Promise<string> {
  const r = await run("check", "seed-004-empty-rmap", "--variant", "rmap-unlock-readonly-writes-zero");
  return /replay: (tdp1\.\S+)/.exec(r.stdout)![1];
}
