import fc from "fast-check";
import type { LitmusStmt, LitmusTest, RmwOrder } from "../parse.js";

/**
 * Random small litmus programs over two locations, for property tests of the memory models:
 * marked loads and stores (with data dependencies through registers), every barrier, RMWs with
 * their orderings, cmpxchg, and if/else on a register.
 */
const REGS = ["r0", "r1"] as const;
const LOCS = ["x", "y"] as const;

const value = fc.oneof(
  fc.integer({ min: 1, max: 2 }).map((c) => ({ const: c })),
  fc.constantFrom(...REGS).map((reg) => ({ reg })),
);

const simple: fc.Arbitrary<LitmusStmt> = fc.oneof(
  fc.record({
    op: fc.constant("store" as const),
    kind: fc.constantFrom("WRITE_ONCE" as const, "smp_store_release" as const),
    loc: fc.constantFrom(...LOCS),
    value,
  }),
  fc.record({
    op: fc.constant("load" as const),
    kind: fc.constantFrom("READ_ONCE" as const, "smp_load_acquire" as const),
    reg: fc.constantFrom(...REGS),
    loc: fc.constantFrom(...LOCS),
  }),
  fc.record({
    op: fc.constant("fence" as const),
    kind: fc.constantFrom(
      "smp_mb" as const,
      "smp_rmb" as const,
      "smp_wmb" as const,
      "smp_mb__before_atomic" as const,
      "smp_mb__after_atomic" as const,
    ),
  }),
  fc
    .record({
      kind: fc.constantFrom("xchg" as const, "cmpxchg" as const, "atomic_add_return" as const),
      order: fc.constantFrom<RmwOrder>("mb", "relaxed", "acquire", "release"),
      loc: fc.constantFrom(...LOCS),
      reg: fc.constantFrom(...REGS),
      expected: fc.integer({ min: 0, max: 1 }),
    })
    .map(
      ({ kind, order, loc, reg, expected }): LitmusStmt => ({
        op: "rmw",
        kind,
        order,
        loc,
        reg,
        value: { const: 3 },
        ...(kind === "cmpxchg" ? { expected: { const: expected } } : {}),
      }),
    ),
  fc
    .constantFrom(...LOCS)
    .map(
      (loc): LitmusStmt => ({ op: "rmw", kind: "atomic_inc", order: "relaxed", loc, value: { const: 1 } }),
    ),
);

const stmt: fc.Arbitrary<LitmusStmt> = fc.oneof(
  { weight: 5, arbitrary: simple },
  {
    weight: 1,
    arbitrary: fc
      .record({
        reg: fc.constantFrom(...REGS),
        v: fc.integer({ min: 0, max: 1 }),
        arm: simple,
        other: simple,
      })
      .map(
        ({ reg, v, arm, other }): LitmusStmt => ({
          op: "if",
          cond: { left: { reg }, op: "==", right: { const: v } },
          thenArm: [arm],
          elseArm: v === 0 ? [other] : [],
        }),
      ),
  },
);

const fence = (kind: "rcu_read_lock" | "rcu_read_unlock" | "synchronize_rcu"): LitmusStmt => ({
  op: "fence",
  kind,
});

/**
 * With RCU: a thread's body may run inside one read-side critical section, or have a
 * synchronize_rcu() at a random place (never both, which would deadlock).
 */
const withRcu = (body: LitmusStmt[]): fc.Arbitrary<LitmusStmt[]> =>
  fc.oneof(
    fc.constant(body),
    fc.constant<LitmusStmt[]>([fence("rcu_read_lock"), ...body, fence("rcu_read_unlock")]),
    fc
      .integer({ min: 0, max: body.length })
      .map((k) => [...body.slice(0, k), fence("synchronize_rcu"), ...body.slice(k)]),
  );

/** Programs of 2..threads threads with 1..stmts statements each; the condition is `true`. */
export function arbitraryLitmus(
  threads: number,
  stmts: number,
  opts: { rcu?: boolean } = {},
): fc.Arbitrary<LitmusTest> {
  const body = fc.array(stmt, { minLength: 1, maxLength: stmts });
  return fc
    .array(opts.rcu ? body.chain(withRcu) : body, { minLength: 2, maxLength: threads })
    .map((bodies) => ({
      name: "random",
      init: new Map(LOCS.map((l) => [l, 0])),
      threads: bodies.map((body, index) => ({ index, stmts: body, regs: [...REGS] })),
      quantifier: "exists" as const,
      condition: { op: "true" as const },
      conditionText: "exists ()",
    }));
}
