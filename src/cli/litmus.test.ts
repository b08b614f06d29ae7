import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

async function run(...argv: string[]) {
  const out = memoryOut();
  const code = await main(argv, out);
  return { code, stdout: out.stdout.join("\n"), stderr: out.stderr.join("\n") };
}

describe("tdplab litmus", () => {
  it("store buffering: Never under sc, Sometimes under tso, herd7's Observation line", async () => {
    const sc = await run("litmus", "litmus/SB.litmus");
    expect(sc.code).toBe(0);
    expect(sc.stdout).toContain("Observation SB Never 0 3");
    const tso = await run("litmus", "litmus/SB.litmus", "--model", "tso");
    expect(tso.stdout).toContain("Observation SB Sometimes 1 3");
    expect(tso.stdout).toContain("0:r0=0; 1:r0=0;  <- satisfies the condition");
  });

  it("--json: one document per file, or a list", async () => {
    const one = JSON.parse((await run("litmus", "litmus/MP.litmus", "--model", "tso", "--json")).stdout);
    expect(one).toMatchObject({
      schemaVersion: 1,
      name: "MP",
      model: "tso",
      observation: "Never",
      ok: false,
      complete: true,
    });
    const two = JSON.parse((await run("litmus", "litmus/MP.litmus", "litmus/LB.litmus", "--json")).stdout);
    expect(two.results.map((r: { name: string }) => r.name)).toEqual(["MP", "LB"]);
  });

  it("lkmm: herd7's Observation line, and a witness execution with a replay string tdplab replay shows", async () => {
    const r = await run("litmus", "litmus/MP+inc+rmb.litmus", "--model", "lkmm");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Observation MP+inc+rmb Sometimes 1 3");
    expect(r.stdout).toMatch(
      /P1 e\d+ R\[once\] +data=0 +r1 = READ_ONCE\(data\) +rf from e\d+ \(initial data\)/,
    );
    const replay = /replay: tdplab replay '(lkmm1\.[\w-]+)' --litmus litmus\/MP\+inc\+rmb\.litmus/.exec(
      r.stdout,
    )?.[1];
    expect(replay).toBeDefined();
    const shown = await run("replay", replay!, "--litmus", "litmus/MP+inc+rmb.litmus");
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain("MP+inc+rmb (lkmm): the execution is allowed");
    expect(shown.stdout).toContain("flag=1   r0 = atomic_read(flag)");
    // The string names its test: another file, or none, is exit 2.
    expect((await run("replay", replay!, "--litmus", "litmus/MP.litmus")).stderr).toMatch(
      /recorded on litmus test MP\+inc\+rmb/,
    );
    expect((await run("replay", replay!)).code).toBe(2);
  });

  it("lkmm --json: result, states and witness (events, rf, co, replay)", async () => {
    const doc = JSON.parse((await run("litmus", "litmus/SB+mbs.litmus", "--model", "lkmm", "--json")).stdout);
    expect(doc).toMatchObject({ model: "lkmm", result: "Never", positive: 0, witness: null, complete: true });
    const sb = JSON.parse((await run("litmus", "litmus/SB.litmus", "--model", "lkmm", "--json")).stdout);
    expect(sb.result).toBe("Sometimes");
    expect(sb.states).toHaveLength(4);
    expect(sb.witness.replay).toMatch(/^lkmm1\./);
    expect(sb.witness.co).toEqual({ x: [0, 2], y: [1, 4] });
    expect(sb.witness.rf).toEqual([
      [1, 3],
      [0, 5],
    ]);
  });

  it("sc/tso: the witness is a schedule of the engine, and its lit1 string replays it", async () => {
    const r = await run("litmus", "litmus/SB.litmus", "--model", "tso");
    expect(r.stdout).toContain("Witness: a schedule of the engine under tso");
    expect(r.stdout).toMatch(/P0\.store_buffer +drain x = 1 to memory/);
    const replay = /replay: tdplab replay '(lit1\.[\w-]+)'/.exec(r.stdout)![1];
    const shown = await run("replay", replay, "--litmus", "litmus/SB.litmus");
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain("final: 0:r0=0; 1:r0=0; x=1; y=1;");
    const doc = JSON.parse((await run("replay", replay, "--litmus", "litmus/SB.litmus", "--json")).stdout);
    expect(doc.witness).toMatchObject({ model: "tso", values: { "0:r0": 0, "1:r0": 0 } });
    expect((await run("replay", replay, "--litmus", "litmus/MP.litmus")).code).toBe(2);
  });

  it("an unknown model is a usage error", async () => {
    expect((await run("litmus", "litmus/SB.litmus", "--model", "arm")).code).toBe(2);
  });

  it("a bad file: FILE:LINE:COL and exit 2, no stack trace", async () => {
    const f = join(mkdtempSync(join(tmpdir(), "tdplab-litmus-")), "bad.litmus");
    writeFileSync(f, "C bad\n{}\nP0(int *x)\n{\n\tspin_trylock(x);\n}\nexists (x=1)\n");
    const r = await run("litmus", f);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${f}:5:2: 'spin_trylock' is not supported`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect((await run("litmus", "/nonexistent.litmus")).code).toBe(2);
  });
});
