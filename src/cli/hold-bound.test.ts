import { describe, expect, it } from "vitest";
import { TraceDoc } from "../trace/schema.js";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

async function run(...argv: string[]) {
  const out = memoryOut();
  const code = await main(argv, out);
  return { code, stdout: out.stdout.join("\n"), stderr: out.stderr.join("\n") };
}

describe("check --hold-bound (L3-bounded-hold)", () => {
  it("a bound below the kernel's unit is exit 1 with L3, and the replay string carries the bound", async () => {
    const ok = await run("check", "bounded-hold", "--strategy", "dpor");
    expect(ok.code).toBe(0);
    const r = await run("check", "bounded-hold", "--strategy", "dpor", "--hold-bound", "6");
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("L3-bounded-hold");
    const replay = /replay: (tdp1\.\S+)/.exec(r.stdout)![1];
    const again = await run("replay", replay, "--json");
    expect(again.code).toBe(1);
    expect(TraceDoc.parse(JSON.parse(again.stdout)).violation?.invariant).toBe("L3-bounded-hold");
  });

  it("rejects a bound that is not a positive integer with exit 2", async () => {
    for (const v of ["0", "-1", "many"]) {
      const r = await run("check", "bounded-hold", "--hold-bound", v);
      expect(r.code, v).toBe(2);
      expect(r.stderr).toContain(`--hold-bound takes an integer >= 1, not '${v}'`);
    }
  });
});
