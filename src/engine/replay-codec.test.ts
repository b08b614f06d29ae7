import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  decodeChoices,
  encodeChoices,
  fromBase64Url,
  REPLAY_PREFIX,
  ReplayFormatError,
  toBase64Url,
} from "./replay-codec.js";

/** Unsigned LEB128, written independently of the codec, to build payloads by hand. */
function varint(v: number): number[] {
  const out: number[] = [];
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}

function payload(bytes: number[]): string {
  return REPLAY_PREFIX + Buffer.from(bytes).toString("base64url");
}

function formatError(text: string): ReplayFormatError {
  try {
    decodeChoices(text);
  } catch (e) {
    if (e instanceof ReplayFormatError) return e;
    throw e;
  }
  throw new Error(`decodeChoices('${text}') did not fail`);
}

const choice = fc.oneof(
  { weight: 6, arbitrary: fc.nat(8) },
  { weight: 2, arbitrary: fc.nat(1 << 20) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) },
  { weight: 1, arbitrary: fc.constantFrom(0x7f, 0x80, 0x3fff, 0x4000, 2 ** 31, 2 ** 32, 2 ** 53 - 1) },
);

/** Sequences with the long runs real schedules have. */
const runs = fc
  .array(fc.tuple(choice, fc.integer({ min: 1, max: 300 })), { maxLength: 30 })
  .map((pairs) => pairs.flatMap(([v, n]) => new Array<number>(n).fill(v)));

describe("replay codec round trip", () => {
  it("decode(encode(xs)) = xs for arbitrary non-negative integers", () => {
    fc.assert(
      fc.property(fc.array(choice, { maxLength: 200 }), (xs) => {
        expect(decodeChoices(encodeChoices(xs))).toEqual(xs);
      }),
      { numRuns: 500 },
    );
  });

  it("decode(encode(xs)) = xs for sequences made of runs", () => {
    fc.assert(
      fc.property(runs, (xs) => {
        expect(decodeChoices(encodeChoices(xs))).toEqual(xs);
      }),
      { numRuns: 300 },
    );
  });

  it("is versioned and uses only base64url characters", () => {
    fc.assert(
      fc.property(fc.array(choice), (xs) => {
        expect(encodeChoices(xs)).toMatch(/^v1\.[A-Za-z0-9_-]*$/);
      }),
    );
  });

  it("is a function of the sequence: equal inputs give equal strings", () => {
    fc.assert(
      fc.property(fc.array(choice), (xs) => {
        expect(encodeChoices([...xs])).toBe(encodeChoices(xs));
      }),
    );
  });

  it("the empty sequence is just the prefix", () => {
    expect(encodeChoices([])).toBe("v1.");
    expect(decodeChoices("v1.")).toEqual([]);
  });
});

describe("replay codec format (pinned: v1 strings in bug reports must keep decoding)", () => {
  it("encodes (value, run length) varint pairs", () => {
    expect(encodeChoices([0, 0, 0, 1])).toBe("v1.AAMBAQ");
    expect(encodeChoices([1, 0, 1, 0])).toBe("v1.AQEAAQEBAAE");
    expect(encodeChoices([300])).toBe("v1.rAIB");
    expect(encodeChoices([2 ** 53 - 1])).toBe("v1._________w8B");
  });

  it("decodes the pinned strings", () => {
    expect(decodeChoices("v1.AAMBAQ")).toEqual([0, 0, 0, 1]);
    expect(decodeChoices("v1.rAIB")).toEqual([300]);
    expect(decodeChoices("v1._________w8B")).toEqual([2 ** 53 - 1]);
  });

  it("a long run encodes short", () => {
    expect(encodeChoices(new Array<number>(10_000).fill(0))).toBe("v1.AJBO");
    const million = encodeChoices(new Array<number>(1_000_000).fill(3));
    expect(million).toBe("v1.A8CEPQ");
    expect(decodeChoices(million)).toHaveLength(1_000_000);
  });

  it("a schedule that mostly keeps running one task stays far below one character per choice", () => {
    const xs: number[] = [];
    for (let i = 0; i < 200; i++) for (let k = 0; k < 50; k++) xs.push(i % 4);
    const s = encodeChoices(xs);
    expect(s.length).toBeLessThan(xs.length / 10);
    expect(decodeChoices(s)).toEqual(xs);
  });

  it("base64url agrees with Node's implementation both ways", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const arr = [...bytes];
        const text = Buffer.from(bytes).toString("base64url");
        expect(toBase64Url(arr)).toBe(text);
        expect(fromBase64Url(text)).toEqual(arr);
      }),
      { numRuns: 300 },
    );
  });
});

describe("replay codec errors", () => {
  it("rejects a different version, naming it", () => {
    const e = formatError("v2.AAMBAQ");
    expect(e.name).toBe("ReplayFormatError");
    expect(e.message).toBe("unsupported replay version 'v2' (this tdplab reads 'v1.')");
    expect(formatError("V1.AAMBAQ").message).toBe(
      "unsupported replay version 'V1' (this tdplab reads 'v1.')",
    );
  });

  it("rejects a string without a version, quoting its start", () => {
    expect(formatError("AAMBAQAAMBAQ").message).toBe(
      "unsupported replay version 'AAMBAQAA' (this tdplab reads 'v1.')",
    );
    expect(formatError("").message).toBe("unsupported replay version '' (this tdplab reads 'v1.')");
  });

  it("rejects an invalid character with its offset in the payload", () => {
    expect(formatError("v1.AA*BAQ").message).toBe("invalid character '*' at offset 2 of the replay payload");
    expect(formatError("v1.AAMB+Q").message).toBe("invalid character '+' at offset 4 of the replay payload");
    expect(formatError("v1.AAMBAQ==").message).toBe(
      "invalid character '=' at offset 6 of the replay payload",
    );
    expect(formatError("v1.AAé").message).toBe("invalid character 'é' at offset 2 of the replay payload");
    expect(formatError("v1.AA MB").message).toBe("invalid character ' ' at offset 2 of the replay payload");
  });

  it("rejects a payload cut inside a base64 group", () => {
    expect(formatError("v1.AAMBA").message).toBe("truncated replay payload");
    expect(formatError("v1.A").message).toBe("truncated replay payload");
  });

  it("rejects a payload cut inside a number", () => {
    // A varint byte with its continuation bit set, and nothing after it.
    expect(formatError(payload([0x80])).message).toBe("replay payload ends inside a number");
    // A value with no run length.
    expect(formatError(payload([5])).message).toBe("replay payload ends inside a number");
    // A valid pair, then a cut number.
    expect(formatError(payload([0, 3, 0xac])).message).toBe("replay payload ends inside a number");
    // Dropping the last character of a real string.
    const s = encodeChoices([300, 300, 7]);
    expect(formatError(s.slice(0, -1)).message).toBe("replay payload ends inside a number");
  });

  it("rejects an empty run", () => {
    expect(formatError(payload([1, 0])).message).toBe("replay payload has an empty run");
  });

  it("rejects numbers beyond 2^53", () => {
    const tooBig = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1];
    expect(formatError(payload(tooBig)).message).toBe("replay payload has an oversized number");
  });

  it("rejects an implausibly long expansion without allocating it", () => {
    expect(formatError(payload([...varint(0), ...varint(50_000_001)])).message).toBe(
      "replay payload is implausibly long",
    );
  });

  it("refuses to encode negative, fractional or unsafe numbers", () => {
    expect(() => encodeChoices([-1])).toThrow(new RangeError("cannot encode -1 as a varint"));
    expect(() => encodeChoices([0, 1.5])).toThrow(new RangeError("cannot encode 1.5 as a varint"));
    expect(() => encodeChoices([Number.NaN])).toThrow(new RangeError("cannot encode NaN as a varint"));
    expect(() => encodeChoices([2 ** 53])).toThrow(RangeError);
  });
});
