import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LitmusError, type LitmusStmt, type LitmusTest, parseLitmus } from "./parse.js";
import { referenceFinalStates } from "./reference-tso.js";
import { finalStates, holds, OPERATIONAL_MODELS, runLitmus } from "./run.js";
import { replaySchedule } from "./schedule.js";

/**
 * The litmus corpus (litmus/*.litmus) gives, in each header, the outcome every model must show
 * ("tdplab: sc=Never tso=Sometimes lkmm=Sometimes": the known x86-TSO results, and the LKMM result
 * with its source: a kernel litmus test's Result line or the kernel's documentation). The engine's TSO (store-buffer
 * tasks explored by DPOR) is checked against brute force and against an independent interpreter
 * of the operational model, on the corpus and on random programs.
 */
const DIR = "litmus";
const corpus = readdirSync(DIR)
  .filter((f) => f.endsWith(".litmus"))
  .map((f) => ({ file: f, text: readFileSync(join(DIR, f), "utf8") }));

describe("the litmus corpus", () => {
  it("has the classic shapes", () => {
    expect(corpus.map((c) => c.file)).toEqual(
      expect.arrayContaining(["SB.litmus", "MP.litmus", "LB.litmus", "IRIW.litmus", "2+2W.litmus"]),
    );
  });

  for (const { file, text } of corpus) {
    const expected = /tdplab: sc=(\w+) tso=(\w+) lkmm=(\w+)/.exec(text);
    it(`${file}: ${expected?.[0] ?? "(no expectation)"}`, () => {
      expect(expected).not.toBeNull();
      // Every file says where its LKMM expectation comes from.
      expect(text).toMatch(/\* lkmm: \S/);
      const test = parseLitmus(text);
      for (const [i, model] of (["sc", "tso", "lkmm"] as const).entries()) {
        const r = runLitmus(test, model);
        expect(r.observation, model).toBe(expected![i + 1]);
        // A witness exactly when some state satisfies the condition; an engine schedule's replay
        // string runs to such a state again.
        expect(r.witness === null, model).toBe(r.positive === 0);
        if (r.witness !== null && "steps" in r.witness)
          expect(holds(test.condition, replaySchedule(r.witness.replay, test).values)).toBe(true);
      }
    });
  }

  it("every file: the engine (DPOR) and the reference interpreter reach the same final states", () => {
    for (const { text } of corpus) {
      const test = parseLitmus(text);
      for (const model of OPERATIONAL_MODELS) {
        const dpor = finalStates(test, model);
        expect(dpor.complete).toBe(true);
        expect([...dpor.states].sort()).toEqual([...referenceFinalStates(test, model)].sort());
      }
      // Brute force over every schedule, where it stays small (SC; TSO's drains multiply it).
      const brute = finalStates(test, "sc", { strategy: "exhaustive" });
      expect([...brute.states].sort()).toEqual([...finalStates(test, "sc").states].sort());
    }
  }, 120_000);
});

/** Random straight-line programs over two locations: stores, loads, fences and RMWs. */
const stmt = (regs: readonly string[]): fc.Arbitrary<LitmusStmt> =>
  fc.oneof(
    fc.record({
      op: fc.constant("store" as const),
      kind: fc.constant("WRITE_ONCE" as const),
      loc: fc.constantFrom("x", "y"),
      value: fc.integer({ min: 1, max: 2 }).map((c) => ({ const: c })),
    }),
    fc.record({
      op: fc.constant("load" as const),
      kind: fc.constant("READ_ONCE" as const),
      reg: fc.constantFrom(...regs),
      loc: fc.constantFrom("x", "y"),
    }),
    fc.record({
      op: fc.constant("fence" as const),
      kind: fc.constantFrom("smp_mb" as const, "smp_wmb" as const),
    }),
    fc
      .record({
        op: fc.constant("rmw" as const),
        kind: fc.constantFrom("xchg" as const, "atomic_inc" as const),
        loc: fc.constantFrom("x", "y"),
        value: fc.constant({ const: 3 }),
      })
      .map((s) => ({ ...s, order: s.kind === "xchg" ? ("mb" as const) : ("relaxed" as const) })),
  );

const program = (threads: number, stmts: number): fc.Arbitrary<LitmusTest> =>
  fc
    .array(fc.array(stmt(["r0", "r1"]), { minLength: 1, maxLength: stmts }), {
      minLength: 2,
      maxLength: threads,
    })
    .map((threads) => ({
      name: "random",
      init: new Map([
        ["x", 0],
        ["y", 0],
      ]),
      threads: threads.map((stmts, index) => ({ index, stmts, regs: ["r0", "r1"] })),
      quantifier: "exists" as const,
      condition: { op: "true" as const },
      conditionText: "exists ()",
    }));

describe("the engine's memory models against brute force and the reference interpreter", () => {
  for (const model of OPERATIONAL_MODELS) {
    it(`${model}: random programs of three threads, DPOR against the reference interpreter`, () => {
      fc.assert(
        fc.property(program(3, 3), (test) => {
          const ref = [...referenceFinalStates(test, model)].sort();
          expect([...finalStates(test, model).states].sort()).toEqual(ref);
        }),
        { numRuns: 60, seed: 17 },
      );
    }, 120_000);

    it(`${model}: small random programs, brute force against DPOR and the reference`, () => {
      fc.assert(
        fc.property(program(2, 2), (test) => {
          const ref = [...referenceFinalStates(test, model)].sort();
          const brute = finalStates(test, model, { strategy: "exhaustive" });
          expect(brute.complete).toBe(true);
          expect([...brute.states].sort()).toEqual(ref);
          expect([...finalStates(test, model).states].sort()).toEqual(ref);
        }),
        { numRuns: 15, seed: 23 },
      );
    }, 120_000);
  }

  it("TSO allows every SC outcome", () => {
    fc.assert(
      fc.property(program(3, 3), (test) => {
        const tso = finalStates(test, "tso").states;
        for (const s of finalStates(test, "sc").states) expect(tso.has(s)).toBe(true);
      }),
      { numRuns: 40, seed: 5 },
    );
  });
});

describe("parsing", () => {
  const base = (body: string, cond = "exists (0:r0=0)") =>
    `C T\n{}\nP0(int *x)\n{\n\tint r0;\n${body}\n}\n${cond}\n`;
  const err = (src: string): LitmusError => {
    try {
      parseLitmus(src);
    } catch (e) {
      if (e instanceof LitmusError) return e;
      throw e;
    }
    throw new Error("parsed");
  };

  it("names, initial values, registers and the condition", () => {
    const t = parseLitmus(
      "C SB+mbs\n{ x=1; int y=2; }\nP0(int *x, int *y)\n{\n int r0;\n r0 = READ_ONCE(*x);\n}\n~exists (0:r0=1 \\/ y=2)\n",
    );
    expect(t.name).toBe("SB+mbs");
    expect([...t.init]).toEqual([
      ["x", 1],
      ["y", 2],
    ]);
    expect(t.quantifier).toBe("~exists");
    expect(t.threads[0].stmts).toEqual([{ op: "load", kind: "READ_ONCE", reg: "r0", loc: "x" }]);
  });

  it("an unsupported primitive: its line and column, and the list of what is supported", () => {
    const e = err(base("\tspin_trylock(x);"));
    expect([e.line, e.col]).toEqual([6, 2]);
    expect(e.message).toMatch(/'spin_trylock' is not supported; the primitives are .*READ_ONCE/);
  });

  it("if/else with ==, != and a bare register; loops are refused, not approximated", () => {
    const t = parseLitmus(
      base("\tr0 = READ_ONCE(*x);\n\tif (r0 == 1) { WRITE_ONCE(*x, 2); } else if (!r0) WRITE_ONCE(*x, 3);"),
    );
    expect(t.threads[0].stmts[1]).toMatchObject({
      op: "if",
      cond: { left: { reg: "r0" }, op: "==", right: { const: 1 } },
      thenArm: [{ op: "store", loc: "x", value: { const: 2 } }],
      elseArm: [{ op: "if", cond: { op: "==", right: { const: 0 } } }],
    });
    expect(err(base("\twhile (r0 == 1) WRITE_ONCE(*x, 1);")).message).toMatch(/'while' is not supported/);
  });

  it("herd7's locations clause adds what the states show", async () => {
    const t = parseLitmus(
      "C T\n{}\nP0(int *x)\n{\n\tint r0;\n\tint r1;\n\tr0 = READ_ONCE(*x);\n}\nlocations [0:r1; x] (* shown too *)\nexists (0:r0=0)\n",
    );
    expect(t.locations).toEqual(["0:r1", "x"]);
    expect(Object.keys(runLitmus(t, "sc").states[0].values).sort()).toEqual(["0:r0", "0:r1", "x"]);
    expect(err(base("\tr0 = READ_ONCE(*x);", "locations [0:r7]\nexists (0:r0=0)")).message).toMatch(
      /no register r7/,
    );
  });

  it("plain C accesses are refused at their column", () => {
    const e = err(base("\tr0 = *x;"));
    expect([e.line, e.col]).toEqual([6, 7]);
    expect(e.message).toMatch(/plain C accesses are not supported/);
    expect(err(base("\t*x = 1;")).message).toMatch(/plain C accesses are not supported/);
  });

  it("ordering suffixes are kept; non-value-returning atomics have none", () => {
    const t = parseLitmus(base("\tr0 = xchg_acquire(x, 1);\n\tatomic_inc(x);\n\tr0 = cmpxchg(x, 0, 1);"));
    expect(t.threads[0].stmts.map((s) => (s.op === "rmw" ? s.order : null))).toEqual([
      "acquire",
      "relaxed",
      "mb",
    ]);
    expect(err(base("\tatomic_inc_relaxed(x);")).message).toMatch(/only value-returning atomics/);
  });

  it("an undeclared register, an unknown location, a condition on a missing register", () => {
    expect(err(base("\tr1 = READ_ONCE(*x);")).message).toMatch(/register 'r1' is not declared/);
    expect(err(base("\tr0 = READ_ONCE(*z);")).message).toMatch(/'z' is not a location/);
    expect(err(base("\tr0 = READ_ONCE(*x);", "exists (0:r9=1)")).message).toMatch(
      /P0 declares no register r9/,
    );
  });

  it("a file that is not a C litmus test", () => {
    expect(err("AArch64 MP\n{}\n").message).toMatch(/starts with 'C NAME'/);
  });
});
