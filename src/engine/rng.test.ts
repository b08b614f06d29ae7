import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { formatSeed, parseSeed, SplitMix64 } from "./rng.js";

const MASK64 = (1n << 64n) - 1n;

/**
 * Independent reference: SplitMix64 written directly on BigInt, from the
 * published algorithm (Steele, Lea, Flood 2014), sharing no code with rng.ts.
 */
function reference(seed: bigint): () => bigint {
  let state = seed & MASK64;
  return () => {
    state = (state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  };
}

function refOutputs(seed: bigint, count: number): bigint[] {
  const next = reference(seed);
  return Array.from({ length: count }, next);
}

/** The reference's nextInt: rejection sampling on the high 32 bits. */
function refNextInt(next: () => bigint, n: number): number {
  if (n <= 1) return 0;
  const limit = Math.floor(2 ** 32 / n) * n;
  for (;;) {
    const x = Number(next() >> 32n);
    if (x < limit) return x % n;
  }
}

// Pinned outputs. The first values for seed 0 are the widely published
// SplitMix64 test vector; all three rows agree with the BigInt reference.
const GOLDEN: readonly (readonly [bigint, readonly bigint[]])[] = [
  [
    0n,
    [
      0xe220a8397b1dcdafn,
      0x6e789e6aa1b965f4n,
      0x06c45d188009454fn,
      0xf88bb8a8724c81ecn,
      0x1b39896a51a8749bn,
      0x53cb9f0c747ea2ean,
      0x2c829abe1f4532e1n,
      0xc584133ac916ab3cn,
      0x3ee5789041c98ac3n,
      0xf3b8488c368cb0a6n,
    ],
  ],
  [
    1n,
    [
      0x910a2dec89025cc1n,
      0xbeeb8da1658eec67n,
      0xf893a2eefb32555en,
      0x71c18690ee42c90bn,
      0x71bb54d8d101b5b9n,
      0xc34d0bff90150280n,
      0xe099ec6cd7363ca5n,
      0x85e7bb0f12278575n,
      0x491718de357e3da8n,
      0xcb435c8e74616796n,
    ],
  ],
  [
    0x123456789abcdef0n,
    [
      0x161922c645ce50e8n,
      0xad760cafa1697b60n,
      0x3501ff44902ca50dn,
      0x417cb9a826d831dfn,
      0x99af6f9b0c4476b6n,
      0x5d51f5f75b762c59n,
      0x66239e8c309a282bn,
      0x53e01f580916c5cbn,
      0xaa941016a4c2958bn,
      0x279993774594e137n,
    ],
  ],
];

describe("SplitMix64 golden vectors", () => {
  it("seed 0 starts with 0xe220a8397b1dcdaf", () => {
    expect(new SplitMix64(0n).nextBigInt()).toBe(0xe220a8397b1dcdafn);
  });

  for (const [seed, outputs] of GOLDEN) {
    it(`seed ${formatSeed(seed)} gives the pinned outputs`, () => {
      const rng = new SplitMix64(seed);
      expect(Array.from({ length: outputs.length }, () => rng.nextBigInt())).toEqual(outputs);
    });

    it(`seed ${formatSeed(seed)}: the pinned outputs are the BigInt reference's`, () => {
      expect(refOutputs(seed, outputs.length)).toEqual(outputs);
    });
  }

  it("next64 hands back 32-bit halves, into the array it is given", () => {
    const rng = new SplitMix64(0n);
    const out: [number, number] = [0, 0];
    const r = rng.next64(out);
    expect(r).toBe(out);
    expect(out).toEqual([0xe220a839, 0x7b1dcdaf]);
  });

  it("a number seed equals the same bigint seed; negative seeds wrap to 64 bits", () => {
    expect(new SplitMix64(12345).nextBigInt()).toBe(new SplitMix64(12345n).nextBigInt());
    expect(new SplitMix64(-1n).nextBigInt()).toBe(refOutputs(MASK64, 1)[0]);
    expect(new SplitMix64(1n << 64n).nextBigInt()).toBe(0xe220a8397b1dcdafn);
  });
});

describe("SplitMix64 against the BigInt reference", () => {
  it("next64 matches for arbitrary 64-bit seeds", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MASK64 }), (seed) => {
        const rng = new SplitMix64(seed);
        const want = refOutputs(seed, 16);
        for (const w of want) {
          const [hi, lo] = rng.next64();
          expect((BigInt(hi) << 32n) | BigInt(lo)).toBe(w);
        }
      }),
      { numRuns: 300 },
    );
  });

  it("carries from the low half into the high half of the state", () => {
    // Low state words just below 2^32 make the golden-gamma addition carry.
    for (const lo of [0xffffffffn, 0x80b583ebn, 0x80b583ean]) {
      const seed = (0x01234567n << 32n) | lo;
      const rng = new SplitMix64(seed);
      expect([rng.nextBigInt(), rng.nextBigInt()]).toEqual(refOutputs(seed, 2));
    }
  });

  it("nextU32 is the high half of the 64-bit output", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MASK64 }), (seed) => {
        const rng = new SplitMix64(seed);
        for (const w of refOutputs(seed, 4)) expect(rng.nextU32()).toBe(Number(w >> 32n));
      }),
    );
  });

  it("nextFloat joins the top 27 bits of the high half and top 26 of the low half, in [0, 1)", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MASK64 }), (seed) => {
        const rng = new SplitMix64(seed);
        for (const w of refOutputs(seed, 4)) {
          const f = rng.nextFloat();
          const bits53 = (Number(w >> 37n) * 2 ** 26 + Number((w & 0xffffffffn) >> 6n)) / 2 ** 53;
          expect(f).toBe(bits53);
          expect(f).toBeGreaterThanOrEqual(0);
          expect(f).toBeLessThan(1);
        }
      }),
    );
  });
});

describe("SplitMix64.nextInt", () => {
  it("stays in [0, n) and equals reference rejection sampling", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: MASK64 }),
        fc.oneof(fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 2 ** 32 })),
        (seed, n) => {
          const rng = new SplitMix64(seed);
          const next = reference(seed);
          for (let i = 0; i < 8; i++) {
            const v = rng.nextInt(n);
            expect(v).toBe(refNextInt(next, n));
            expect(Number.isInteger(v) && v >= 0 && v < n).toBe(true);
          }
          // Both consumed the same number of outputs.
          expect(rng.nextBigInt()).toBe(next());
        },
      ),
      { numRuns: 300 },
    );
  });

  it("rejects draws above the largest multiple of n (exactly uniform)", () => {
    // n = 3 * 2^30: limit is 3 * 2^30, so a high half >= 0xc0000000 is redrawn.
    const n = 3 * 2 ** 30;
    let seed = 0n;
    while (Number(refOutputs(seed, 1)[0] >> 32n) < n) seed++;
    const [first, second] = refOutputs(seed, 2);
    expect(Number(first >> 32n)).toBeGreaterThanOrEqual(n);
    const rng = new SplitMix64(seed);
    expect(rng.nextInt(n)).toBe(Number(second >> 32n) % n);
  });

  it("n <= 1 gives 0 without consuming output", () => {
    const rng = new SplitMix64(7n);
    expect(rng.nextInt(1)).toBe(0);
    expect(rng.nextInt(0)).toBe(0);
    expect(rng.nextBigInt()).toBe(refOutputs(7n, 1)[0]);
  });

  it("n = 2^32 returns the raw high half", () => {
    const rng = new SplitMix64(0n);
    expect(rng.nextInt(2 ** 32)).toBe(0xe220a839);
  });

  it("is uniform over a small range (chi-square, 6 buckets)", () => {
    const rng = new SplitMix64(0xfeedn);
    const n = 6;
    const draws = 60_000;
    const counts = new Array<number>(n).fill(0);
    for (let i = 0; i < draws; i++) counts[rng.nextInt(n)]++;
    const expected = draws / n;
    const chi2 = counts.reduce((acc, c) => acc + (c - expected) ** 2 / expected, 0);
    // 5 degrees of freedom: P(chi2 > 20.5) ~ 0.001.
    expect(chi2).toBeLessThan(20.5);
    expect(Math.min(...counts)).toBeGreaterThan(0);
  });
});

describe("SplitMix64 state", () => {
  it("the initial state is the seed's two halves", () => {
    expect(new SplitMix64(0x123456789abcdef0n).getState()).toEqual({ hi: 0x12345678, lo: 0x9abcdef0 });
  });

  it("getState/setState round trip resumes the same stream", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MASK64 }), fc.nat(20), (seed, skip) => {
        const rng = new SplitMix64(seed);
        for (let i = 0; i < skip; i++) rng.next64();
        const saved = rng.getState();
        const first = [rng.nextBigInt(), rng.nextBigInt(), rng.nextBigInt()];
        rng.setState(saved);
        expect([rng.nextBigInt(), rng.nextBigInt(), rng.nextBigInt()]).toEqual(first);
        const other = new SplitMix64(0n);
        other.setState(saved);
        expect(other.nextBigInt()).toBe(first[0]);
      }),
    );
  });

  it("getState returns a snapshot, not a live view", () => {
    const rng = new SplitMix64(3n);
    const s = rng.getState();
    rng.next64();
    expect(s).toEqual({ hi: 0, lo: 3 });
    expect(rng.getState()).not.toEqual(s);
  });

  it("setState keeps only the low 32 bits of each half as unsigned", () => {
    const rng = new SplitMix64(0n);
    rng.setState({ hi: -1, lo: -1 });
    expect(rng.getState()).toEqual({ hi: 0xffffffff, lo: 0xffffffff });
    expect(rng.nextBigInt()).toBe(refOutputs(MASK64, 1)[0]);
  });
});

describe("parseSeed / formatSeed", () => {
  it("accepts decimal and 0x-hex", () => {
    expect(parseSeed("0")).toBe(0n);
    expect(parseSeed("42")).toBe(42n);
    expect(parseSeed("0x2a")).toBe(42n);
    expect(parseSeed("0xDEADbeef")).toBe(0xdeadbeefn);
    expect(parseSeed("  7 \n")).toBe(7n);
    expect(parseSeed("18446744073709551615")).toBe(MASK64);
    expect(parseSeed("0xffffffffffffffff")).toBe(MASK64);
    expect(parseSeed("0x0000000000000000001")).toBe(1n);
  });

  it("rejects junk, naming the input", () => {
    for (const junk of ["", " ", "abc", "-1", "1.5", "1e3", "0x", "0xg1", "12 34", "+5", "0b101", "0o17"]) {
      expect(() => parseSeed(junk)).toThrow(RangeError);
      expect(() => parseSeed(junk)).toThrow(`seed must be a decimal or 0x-hex 64-bit integer, got '${junk}'`);
    }
  });

  it("rejects values beyond 64 bits, decimal or hex, saying so", () => {
    for (const big of ["18446744073709551616", "0x10000000000000000", "99999999999999999999999"]) {
      expect(() => parseSeed(big)).toThrow(RangeError);
      expect(() => parseSeed(big)).toThrow(`seed '${big}' does not fit in 64 bits`);
    }
  });

  it("formatSeed gives 16 hex digits with 0x", () => {
    expect(formatSeed(0n)).toBe("0x0000000000000000");
    expect(formatSeed(0x2an)).toBe("0x000000000000002a");
    expect(formatSeed(MASK64)).toBe("0xffffffffffffffff");
  });

  it("parseSeed(formatSeed(s)) === s, and decimal text parses to the same value", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: MASK64 }), (s) => {
        expect(parseSeed(formatSeed(s))).toBe(s);
        expect(parseSeed(s.toString())).toBe(s);
      }),
    );
  });
});
