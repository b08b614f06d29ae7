import { describe, expect, it } from "vitest";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

describe("tdplab replay of a run checked under x86-TSO", () => {
  it("names the memory model in its summary, as check does", async () => {
    const checked = memoryOut();
    const args = ["check", "vcpu-request-handshake", "--variant", "vcpu-enter-guest-without-smp-mb"];
    expect(await main([...args, "--memory-model", "tso", "--strategy", "dpor", "--json"], checked)).toBe(1);
    const replay = JSON.parse(checked.stdout.join("\n")).violation.replay as string;
    const out = memoryOut();
    expect(await main(["replay", replay], out)).toBe(1);
    expect(out.stdout[0]).toMatch(
      /^vcpu-request-handshake \[v[0-9.]+, variant vcpu-enter-guest-without-smp-mb, tso\]: \d+ steps, VIOLATION/,
    );
  });
});
