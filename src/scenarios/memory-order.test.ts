import { describe, expect, it } from "vitest";
import type { MemoryModel } from "../kernel/machine.js";
import { runCheck } from "./check.js";
import { identityOf } from "./checkpoint-file.js";
import { resolveScenario, resolveVariant, runConfigFor } from "./resolve.js";

/** A complete DPOR check of a built-in scenario (and variant) under `model`. */
async function check(scenarioName: string, variantName: string | null, model: MemoryModel) {
  const scenario = await resolveScenario(scenarioName);
  const variant = await resolveVariant(variantName);
  const machineFlags = { memoryModel: model };
  const req = {
    scenario,
    variant,
    variantRef: variantName,
    config: runConfigFor(scenario, variant, { machine: machineFlags }),
    featureFlags: [],
    machineFlags,
    explore: { strategy: "dpor" as const },
    shrink: false,
  };
  return { req, out: runCheck(req) };
}

describe("check --memory-model on whole scenarios", () => {
  it("SB as a scenario: the r0 == r1 == 0 outcome is found under tso only", async () => {
    expect((await check("litmus-sb", null, "sc")).out.status).toBe("ok");
    const tso = (await check("litmus-sb", null, "tso")).out;
    expect(tso.status).toBe("violation");
    expect(tso.counterexample?.trace.violation?.invariant).toBe("litmus-exists");
  });

  it("MP as a scenario: never, under either model", async () => {
    for (const m of ["sc", "tso"] as const) {
      const { out } = await check("litmus-mp", null, m);
      expect(out.status).toBe("ok");
      expect(out.explore.complete).toBe(true);
    }
  });

  it("the vcpu->mode handshake without smp_mb(): safe under sc, request-lost under tso", async () => {
    expect((await check("vcpu-request-handshake", "vcpu-enter-guest-without-smp-mb", "sc")).out.status).toBe(
      "ok",
    );
    expect((await check("vcpu-request-handshake", null, "tso")).out.status).toBe("ok");
    const tso = await check("vcpu-request-handshake", "vcpu-enter-guest-without-smp-mb", "tso");
    expect(tso.out.counterexample?.trace.violation?.invariant).toBe("request-lost");
    // The model is part of the replay string and of a checkpoint's identity.
    const header = JSON.parse(
      Buffer.from(tso.out.counterexample!.replay.split(".")[1], "base64url").toString("utf8"),
    );
    expect(header.m).toEqual({ memoryModel: "tso" });
    expect(identityOf(tso.req).machine).toEqual({ memoryModel: "tso" });
  });
});
