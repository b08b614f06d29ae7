import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseLitmus } from "../parse.js";
import { referenceFinalStates } from "../reference-tso.js";
import { finalStates, runLitmus } from "../run.js";
import { arbitraryLitmus } from "./arbitrary.js";
import { lkmmCandidate, lkmmFinalStates } from "./enumerate.js";
import { isLkmmReplay, replayLkmm } from "./replay.js";

/**
 * The LKMM (axiomatic, src/litmus/lkmm) against what it must agree with: the unreduced
 * enumeration, the operational models it must contain (SC and x86-TSO are both valid
 * implementations of the kernel's model), and litmus tests whose results the kernel documents.
 */
const test = (src: string) => parseLitmus(src);
const lit = (name: string) => test(readFileSync(join("litmus", name), "utf8"));

/** A two-thread test with the given bodies; registers r0 and r1 in each. */
const two = (p0: string, p1: string, cond: string) =>
  test(
    `C T\n{}\nP0(int *x, int *y, int *z)\n{\n\tint r0;\n\tint r1;\n${p0}\n}\nP1(int *x, int *y, int *z)\n{\n\tint r0;\n\tint r1;\n${p1}\n}\nexists (${cond})\n`,
  );

describe("lkmm: reductions against the unreduced enumeration", () => {
  it("random programs: po-ordered co and per-location filtering lose no final state", () => {
    fc.assert(
      fc.property(arbitraryLitmus(3, 2), (t) => {
        const reduced = lkmmFinalStates(t);
        const brute = lkmmFinalStates(t, { brute: true });
        expect([...reduced.states.keys()].sort()).toEqual([...brute.states.keys()].sort());
        expect(reduced.executions).toBe(brute.executions);
      }),
      { numRuns: 120, seed: 7 },
    );
  }, 120_000);

  it("the corpus files with at most three writes per location", () => {
    for (const f of [
      "SB+mbs.litmus",
      "MP+locks.litmus",
      "2+2W+wmbs.litmus",
      "WRC+rel+rmb.litmus",
      "RCU-MP+sync.litmus",
    ]) {
      const t = lit(f);
      expect([...lkmmFinalStates(t).states.keys()].sort(), f).toEqual(
        [...lkmmFinalStates(t, { brute: true }).states.keys()].sort(),
      );
    }
  });
});

describe("lkmm contains the operational models", () => {
  it("SC ⊆ x86-TSO ⊆ LKMM on random programs (barriers, acquire/release, RMWs, cmpxchg, if)", () => {
    fc.assert(
      fc.property(arbitraryLitmus(3, 3), (t) => {
        const sc = finalStates(t, "sc").states;
        const tso = finalStates(t, "tso").states;
        const lkmm = finalStates(t, "lkmm").states;
        for (const s of sc) expect(tso.has(s), `SC state ${s} not under TSO`).toBe(true);
        for (const s of tso) expect(lkmm.has(s), `TSO state ${s} not under LKMM`).toBe(true);
      }),
      { numRuns: 60, seed: 1 },
    );
  }, 120_000);

  it("with RCU sections and grace periods: SC ⊆ x86-TSO ⊆ LKMM, and the engine's RCU matches the reference's", () => {
    fc.assert(
      fc.property(arbitraryLitmus(3, 2, { rcu: true }), (t) => {
        const sc = finalStates(t, "sc").states;
        const tso = finalStates(t, "tso").states;
        const lkmm = finalStates(t, "lkmm").states;
        expect([...tso].sort()).toEqual([...referenceFinalStates(t, "tso")].sort());
        expect([...sc].sort()).toEqual([...referenceFinalStates(t, "sc")].sort());
        for (const s of sc) expect(tso.has(s), `SC state ${s} not under TSO`).toBe(true);
        for (const s of tso) expect(lkmm.has(s), `TSO state ${s} not under LKMM`).toBe(true);
      }),
      { numRuns: 40, seed: 3 },
    );
  }, 120_000);
});

/** The LKMM's observation of a two-thread test. */
const observe = (p0: string, p1: string, cond: string) => runLitmus(two(p0, p1, cond), "lkmm").observation;

describe("lkmm: the rules the kernel documents", () => {
  it("a failed cmpxchg orders nothing (litmus-tests/cmpxchg-fail-unordered-1.litmus: Sometimes)", () => {
    const body = (a: string, b: string) =>
      `\tWRITE_ONCE(*${a}, 1);\n\tr1 = cmpxchg(z, 1, 0);\n\tr0 = READ_ONCE(*${b});`;
    expect(observe(body("x", "y"), body("y", "x"), "0:r0=0 /\\ 1:r0=0")).toBe("Sometimes");
    // A successful one is a full barrier.
    const xchg = (a: string, b: string) =>
      `\tWRITE_ONCE(*${a}, 1);\n\tr1 = xchg(z, 1);\n\tr0 = READ_ONCE(*${b});`;
    expect(observe(xchg("x", "y"), xchg("y", "x"), "0:r0=0 /\\ 1:r0=0")).toBe("Never");
  });

  it("smp_mb__after_atomic() after a failed cmpxchg orders it (cmpxchg-fail-ordered-2.litmus: Never)", () => {
    const p0 = "\tWRITE_ONCE(*x, 1);\n\tr1 = cmpxchg(y, 0, 1);";
    const reader = (mb: string) => `\tr1 = cmpxchg(y, 0, 1);\n${mb}\tr0 = READ_ONCE(*x);`;
    const cond = "0:r1=0 /\\ 1:r1=1 /\\ 1:r0=0";
    expect(observe(p0, reader(""), cond)).toBe("Sometimes");
    expect(observe(p0, reader("\tsmp_mb__after_atomic();\n"), cond)).toBe("Never");
  });

  it("each axiom is what rejects its classic shape", () => {
    // Unreduced, so that coherence and atomicity are checked on whole executions, not per location.
    const rejected = (f: string) => lkmmFinalStates(lit(f), { brute: true }).rejected;
    expect(rejected("CoRR+forwarding.litmus").coherence).toBeGreaterThan(0);
    expect(rejected("seed-003-mark-invalid+xchg.litmus").atomic).toBeGreaterThan(0);
    expect(rejected("LB+ctrls.litmus")["happens-before"]).toBeGreaterThan(0);
    expect(rejected("SB+mbs.litmus").propagation).toBeGreaterThan(0);
    expect(rejected("RCU-MP+sync.litmus").rcu).toBeGreaterThan(0);
  });

  it("values out of thin air are hb cycles (LB with data dependencies): rejected, never allowed", () => {
    const r = lkmmFinalStates(lit("LB+datas.litmus"));
    expect(r.rejected["happens-before"]).toBeGreaterThan(0);
    expect([...r.states.keys()]).toEqual(['{"0:r0":0,"1:r0":0,"x":0,"y":0}']);
  });

  it("a control dependency orders a load before a store inside the if, not one after the join", () => {
    const p1 = "\tr0 = READ_ONCE(*y);\n\tsmp_mb();\n\tWRITE_ONCE(*x, 1);";
    const cond = "0:r0=1 /\\ 1:r0=1";
    expect(observe("\tr0 = READ_ONCE(*x);\n\tif (r0) WRITE_ONCE(*y, 1);", p1, cond)).toBe("Never");
    const join = "\tr0 = READ_ONCE(*x);\n\tif (r0) r1 = 2; else r1 = 2;\n\tWRITE_ONCE(*y, 1);";
    expect(observe(join, p1, cond)).toBe("Sometimes");
  });
});

/** The LKMM witness of a test, which must have one. */
const lkmmWitness = (t: ReturnType<typeof lit>) => {
  const w = runLitmus(t, "lkmm").witness;
  if (w === null || !("events" in w)) throw new Error(`${t.name}: no LKMM witness`);
  return w;
};

describe("lkmm witnesses", () => {
  it("the witness reaches the condition, and its replay string names the same execution", () => {
    const t = lit("SB.litmus");
    const w = lkmmWitness(t);
    const reads = w.events.filter((e) => e.kind === "R");
    expect(reads.map((e) => e.value)).toEqual([0, 0]);
    expect(isLkmmReplay(w.replay)).toBe(true);
    expect(replayLkmm(w.replay, t)).toEqual({ events: w.events, rf: w.rf, co: w.co, choice: w.choice });
  });

  it("no witness when the condition is never reached", () => {
    expect(runLitmus(lit("SB+mbs.litmus"), "lkmm").witness).toBeNull();
    expect(runLitmus(lit("SB+mbs.litmus"), "sc").witness).toBeNull();
  });

  it("a string for another test, a choice that does not fit, a forbidden execution: refused", () => {
    const w = lkmmWitness(lit("SB.litmus"));
    expect(() => replayLkmm(w.replay, lit("MP.litmus"))).toThrow(/recorded on litmus test SB/);
    expect(() => replayLkmm("lkmm1.!!", lit("SB.litmus"))).toThrow(/does not decode/);
    const t = lit("SB+mbs.litmus");
    expect(lkmmCandidate(t, [0, 0, 9, 0])).toMatchObject({ invalid: expect.stringMatching(/no option 9/) });
    // SB+mbs: both loads reading the initial values is the one forbidden candidate.
    const forbidden = [...Array(4).keys()].flatMap((a) =>
      [...Array(4).keys()].map((b) => lkmmCandidate(t, [0, 0, a, b])),
    );
    expect(
      forbidden.filter((c) => "rejected" in c).map((c) => ("rejected" in c ? c.rejected : "")),
    ).toContain("propagation");
  });
});
