import { describe, expect, it } from "vitest";
import { explore } from "../engine/explore/explore.js";
import type { Gen } from "../engine/op.js";
import type { Program } from "../engine/runtime.js";
import { kfree, kzalloc } from "../kernel/alloc.js";
import { Atomic, READ_ONCE } from "../kernel/atomic.js";
import { bootMachine } from "../kernel/machine.js";
import { Spinlock, spin_lock, spin_unlock } from "../kernel/spinlock.js";
import { recordTraceDoc, runCheck } from "../scenarios/check.js";
import { resolveScenario, resolveVariant, runConfigFor } from "../scenarios/resolve.js";
import { formatRaceDiagram } from "./race-diagram.js";

const RUN = { scenario: "t", kernel: "v6.4", features: [], variant: null };

describe("race diagrams show every party", () => {
  it("an ABBA deadlock shows both tasks and the lock each took", () => {
    const abba: Program = ({ spawn }) => {
      bootMachine();
      const a = new Spinlock("A");
      const b = new Spinlock("B");
      const take = (x: Spinlock, y: Spinlock) =>
        (function* (): Gen<void> {
          yield* spin_lock(x);
          yield* spin_lock(y);
          yield* spin_unlock(y);
          yield* spin_unlock(x);
        })();
      spawn("cpu-ab", take(a, b));
      spawn("cpu-ba", take(b, a));
    };
    const r = explore(abba);
    expect(r.violation?.result.violations[0].invariant).toBe("deadlock");
    const { doc } = recordTraceDoc(abba, r.violation!.choices, {
      overrides: new Map(),
      run: RUN,
      replay: "tdp1.test",
    });
    const d = formatRaceDiagram(doc);
    expect(d).toContain("(cpu-ab)");
    expect(d).toContain("(cpu-ba)");
    expect(d.match(/spin_lock/g)?.length).toBeGreaterThanOrEqual(2);
  });

  it("a use-after-free of an object the report does not name by number still shows the kfree", () => {
    const uaf: Program = ({ spawn }) => {
      bootMachine();
      const widget = kzalloc("widget", "widget");
      const count = new Atomic("count", 0, widget);
      spawn(
        "freer",
        (function* (): Gen<void> {
          yield* kfree(widget);
        })(),
      );
      spawn(
        "user",
        (function* (): Gen<void> {
          yield* READ_ONCE(count);
        })(),
      );
    };
    const r = explore(uaf);
    expect(r.violation?.result.violations[0].invariant).toBe("use-after-free");
    const { doc } = recordTraceDoc(uaf, r.violation!.choices, {
      overrides: new Map(),
      run: RUN,
      replay: "tdp1.test",
    });
    const d = formatRaceDiagram(doc);
    expect(d).toContain("(freer)");
    expect(d).toContain("kfree");
  });

  it("a use-after-free shows the kfree", async () => {
    const scenario = await resolveScenario("seed-000-teardown");
    const variant = await resolveVariant("uninit-invalidate-unprotected");
    const out = runCheck({
      scenario,
      variant,
      variantRef: null,
      config: runConfigFor(scenario, variant, { kernel: "v6.4" }),
      featureFlags: [],
      machineFlags: {},
      explore: { strategy: "dpor" },
    });
    const doc = out.counterexample!.trace;
    expect(doc.violation?.invariant).toBe("use-after-free");
    expect(formatRaceDiagram(doc)).toContain("kfree");
  });
});
