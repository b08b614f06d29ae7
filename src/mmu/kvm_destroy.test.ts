import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { explore } from "../engine/explore/explore.js";
import { bothWays } from "../engine/explore/testkit.js";
import { host } from "../engine/host.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { bootMachine } from "../kernel/machine.js";
import { kvm_create_vm } from "./kvm.js";
import { kvm_get_kvm_at_spawn, kvm_put_kvm } from "./kvm_destroy.js";
import { presetByName } from "./presets.js";
import { destroyVmTask } from "./workloads.js";

/**
 * Users' kvm_put_kvm() beside a teardown task commute (class "kvm-users-put"): the teardown holds
 * its reference until they are all gone. Checked against every schedule: users that put once, or
 * (a bug) twice, with some shared work between, must give DPOR the same final states and violations
 * as brute force.
 */
function program(users: readonly number[], probe: { last: string }, where: RefAt = "setup"): Program {
  return ({ spawn }) => {
    bootMachine();
    const kvm = kvm_create_vm({ features: presetByName("v6.6").features, ptesPerTable: 2 });
    const shared = host().newObject("shared");
    let x = 0;
    const seen: number[] = [];
    const user = (i: number, puts: number): Gen<void> =>
      (function* (): Gen<void> {
        if (where !== "setup") kvm_get_kvm_at_spawn(kvm);
        // A user spawned by another, at run time, while the teardown may already be waiting.
        if (where === "late" && i === 0) yield { kind: "spawn", name: "late", body: user(9, 1) };
        yield { kind: "rmw", obj: shared, fn: "user", step: "work" };
        x = x * 3 + i + 1;
        seen.push(x);
        for (let p = 0; p < puts; p++) yield* kvm_put_kvm(kvm);
      })();
    users.forEach((puts, i) => {
      if (where === "setup") kvm_get_kvm_at_spawn(kvm);
      spawn(`user${i}`, user(i, puts));
    });
    spawn("destroy-vm", destroyVmTask(kvm, { checkLiveness: false }));
    host().addCheck("final", () => {
      probe.last = `${kvm.users_count.v}|${x}|${seen.join(",")}|${kvm.kobj.freed === null}`;
    });
  };
}

/** Where users take their reference: in setup (a plain count), in their own prologue (an object each), or also late. */
type RefAt = "setup" | "prologue" | "late";

describe("kvm_put_kvm beside a teardown task", () => {
  it("explores what every schedule reaches, with a third of the executions or fewer", () => {
    let schedules = 0;
    let executions = 0;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 2, maxLength: 2 }), (users) => {
        const probe = { last: "" };
        // Violations by invariant only: which user a report names may differ between equivalent orders.
        const both = bothWays(program(users, probe), probe, 400_000, (v) => v.invariant);
        expect(both).not.toBeNull();
        expect(both!.dpor.finals).toEqual(both!.brute.finals);
        expect(both!.dpor.violations).toEqual(both!.brute.violations);
        schedules += both!.brute.executions;
        executions += both!.dpor.executions;
      }),
      { numRuns: 4, seed: 3 },
    );
    expect(executions * 3).toBeLessThan(schedules);
  }, 120_000);

  for (const where of ["prologue", "late"] as const) {
    it(`users whose references are taken in their ${where === "late" ? "prologue and one user spawned at run time" : "prologue"}: what every schedule reaches`, () => {
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: 2 }), { minLength: 2, maxLength: 2 }), (users) => {
          const probe = { last: "" };
          const both = bothWays(program(users, probe, where), probe, 400_000, (v) => v.invariant);
          expect(both).not.toBeNull();
          expect(both!.dpor.finals).toEqual(both!.brute.finals);
          expect(both!.dpor.violations).toEqual(both!.brute.violations);
        }),
        { numRuns: 4, seed: 5 },
      );
    }, 120_000);
  }

  it("a user's own reference: the teardown's wait is never tried before that user's put", () => {
    const r = explore(program([1, 1], { last: "" }, "prologue"));
    expect(r.complete).toBe(true);
    expect(r.blockedExecutions ?? 0).toBe(0);
    const setup = explore(program([1, 1], { last: "" }, "setup"));
    // The same users with a plain count (references taken in setup) do try it, and fail.
    expect(setup.blockedExecutions ?? 0).toBeGreaterThan(0);
  });

  it("the puts of three users are one execution, not six", () => {
    const p = program([1, 1, 1], { last: "" });
    const plain = explore(p, { plainDependence: true });
    const declared = explore(p);
    expect(declared.complete && plain.complete).toBe(true);
    expect(declared.executions).toBeLessThan(plain.executions);
  });

  it("a user that puts one reference too many is reported in every order", () => {
    const r = explore(program([2, 1], { last: "" }), { stopOnFirstViolation: false });
    expect(r.stats.violationsByInvariant.refcount).toBeGreaterThan(0);
  });
});
