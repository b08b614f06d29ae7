import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Rel } from "./relation.js";

/** The bitset relations against the definitions, on random relations over up to 40 events. */
const rel = fc
  .integer({ min: 1, max: 40 })
  .chain((n) =>
    fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 3 * n }).map((pairs) => ({ n, pairs })),
  );

describe("Rel", () => {
  it("seq, union, inverse and plus agree with their set definitions", () => {
    fc.assert(
      fc.property(rel, rel, ({ n, pairs }, other) => {
        const a = Rel.of(n, pairs);
        const b = Rel.of(
          n,
          other.pairs.filter(([i, j]) => i < n && j < n),
        );
        const has = (ps: readonly (readonly [number, number])[], i: number, j: number) =>
          ps.some(([x, y]) => x === i && y === j);
        const bp = b.pairs();
        for (let i = 0; i < n; i++)
          for (let j = 0; j < n; j++) {
            const viaK = [...Array(n).keys()].some((k) => a.has(i, k) && b.has(k, j));
            expect(a.seq(b).has(i, j)).toBe(viaK);
            expect(a.union(b).has(i, j)).toBe(has(pairs, i, j) || has(bp, i, j));
            expect(a.inverse().has(j, i)).toBe(a.has(i, j));
          }
        // a+ is the least transitive relation containing a.
        const plus = a.plus();
        expect(plus.seq(plus).minus(plus).isEmpty()).toBe(true);
        let reach = a;
        for (let k = 0; k < n; k++) reach = reach.union(reach.seq(a));
        expect(plus.equals(reach)).toBe(true);
      }),
      { numRuns: 60, seed: 11 },
    );
  });

  it("acyclic and irreflexive", () => {
    expect(
      Rel.of(3, [
        [0, 1],
        [1, 2],
      ]).acyclic(),
    ).toBe(true);
    expect(
      Rel.of(3, [
        [0, 1],
        [1, 2],
        [2, 0],
      ]).acyclic(),
    ).toBe(false);
    expect(Rel.of(3, [[1, 1]]).irreflexive()).toBe(false);
    expect(Rel.id(3, (i) => i === 2).pairs()).toEqual([[2, 2]]);
  });
});
