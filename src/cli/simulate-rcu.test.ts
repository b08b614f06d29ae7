import { describe, expect, it } from "vitest";
import type { SimulateDoc } from "./commands/simulate.js";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

/** `simulate --json` of a real scenario lists each run's RCU CPU stall warnings. */
async function json(...argv: string[]): Promise<SimulateDoc> {
  const out = memoryOut();
  const code = await main([...argv, "--json"], out);
  expect(out.stderr.join("\n")).not.toMatch(/error/);
  expect(code).toBe(0);
  return JSON.parse(out.stdout.join("\n")) as SimulateDoc;
}

describe("tdplab simulate --json: RCU", () => {
  it("RCU CPU stall warnings are in each run's rcuStalls: the worker's CPU, once forcing is off", async () => {
    // Forced every ~100 ms, no grace period is held up for 200 ms.
    const on = await json(
      "simulate",
      "teardown-wait",
      "--set",
      "guestSize=16GiB",
      "--set",
      "rcuStallNs=200ms",
    );
    expect(on.runs.every((r) => r.rcuStalls.length === 0)).toBe(true);
    const off = await json(
      "simulate",
      "teardown-wait",
      "--set",
      "guestSize=16GiB",
      "--set",
      "rcuStallNs=50ms",
      "--set",
      "rcuUrgentQsNs=0",
    );
    const idle = off.runs.find((r) => r.label === "none/idle")!;
    expect(idle.rcuStalls[0]).toMatchObject({ cpus: [1] });
    expect(idle.rcuStalls[0].atNs - idle.rcuStalls[0].gpStartNs).toBe(50e6);
    expect(off.runs.find((r) => r.label === "full/idle")!.rcuStalls).toEqual([]);
  });
});
