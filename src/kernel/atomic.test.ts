import { describe, expect, it } from "vitest";
import { enumerateAll } from "../engine/enumerate.js";
import type { Gen } from "../engine/op.js";
import { type Program, runProgram } from "../engine/runtime.js";
import { RoundRobinScheduler } from "../engine/scheduler.js";
import { kfree, kzalloc } from "./alloc.js";
import {
  Atomic,
  andMask,
  atomic_fetch_add,
  atomic_fetch_sub,
  BitField,
  bitfield_load,
  bitfield_store,
  clear_bit,
  cmpxchg,
  READ_ONCE,
  set_bit,
  test_and_clear_bit,
  test_and_set_bit,
  test_bit,
  testBit,
  try_cmpxchg,
  WRITE_ONCE,
  withBit,
  xchg,
} from "./atomic.js";
import { bootMachine } from "./machine.js";

function runOnce(p: Program) {
  return runProgram(p, { scheduler: new RoundRobinScheduler() });
}

/** Every schedule of a program that reports one value per run through `record`. */
function outcomes<T>(build: (record: (t: T) => void) => Program): T[] {
  const seen: T[] = [];
  const r = enumerateAll(build((t) => seen.push(t)));
  expect(r.complete).toBe(true);
  expect(r.firstViolation).toBeNull();
  expect(seen.length).toBe(r.executions);
  return seen;
}

/** Calls `done` when the n-th task has finished. */
function barrier(n: number, done: () => void): () => void {
  let left = n;
  return () => {
    if (--left === 0) done();
  };
}

describe("bit helpers on 64-bit words held as numbers", () => {
  it("test, set and clear bits in both halves", () => {
    let v = 0;
    v = withBit(v, 0, true);
    v = withBit(v, 31, true);
    v = withBit(v, 40, true);
    v = withBit(v, 52, true);
    expect(v).toBe(1 + 2 ** 31 + 2 ** 40 + 2 ** 52);
    for (const nr of [0, 31, 40, 52]) expect(testBit(v, nr)).toBe(true);
    for (const nr of [1, 30, 32, 39, 41, 51]) expect(testBit(v, nr)).toBe(false);
    expect(withBit(v, 40, true)).toBe(v);
    v = withBit(v, 31, false);
    v = withBit(v, 40, false);
    expect(v).toBe(1 + 2 ** 52);
    expect(withBit(v, 33, false)).toBe(v);
  });

  it("masks across the 32-bit boundary", () => {
    const v = 2 ** 45 + 2 ** 33 + 0xf0f0;
    expect(andMask(v, 2 ** 45 + 0xff)).toBe(2 ** 45 + 0xf0);
    expect(andMask(v, 0)).toBe(0);
  });
});

describe("BitField", () => {
  const level = new BitField("level", 0, 4);
  const invalid = new BitField("invalid", 11, 1);
  const smm = new BitField("smm", 24, 8);
  const whole = new BitField("word", 0, 32);

  it("reads and replaces one field, leaving the others", () => {
    let w = 0;
    w = level.set(w, 4);
    w = smm.set(w, 0xff);
    w = invalid.set(w, 1);
    expect(level.get(w)).toBe(4);
    expect(smm.get(w)).toBe(0xff);
    expect(invalid.get(w)).toBe(1);
    w = invalid.set(w, 0);
    expect(invalid.get(w)).toBe(0);
    expect(level.get(w)).toBe(4);
    expect(smm.get(w)).toBe(0xff);
  });

  it("reads a full 32-bit field as unsigned", () => {
    expect(whole.get(0xffffffff)).toBe(0xffffffff);
    expect(smm.get(0xff000000)).toBe(0xff);
  });

  it("keeps the high half of a 64-bit word when storing a field", () => {
    const w = 2 ** 40 + 2 ** 35;
    const s = invalid.set(w, 1);
    expect(s).toBe(w + 2 ** 11);
    expect(invalid.set(s, 0)).toBe(w);
  });

  it("rejects values that do not fit and fields that do not fit a 32-bit word", () => {
    expect(() => invalid.set(0, 2)).toThrow(RangeError);
    expect(() => level.set(0, -1)).toThrow(RangeError);
    expect(() => level.set(0, 1.5)).toThrow(RangeError);
    expect(() => new BitField("wide", 30, 4)).toThrow(RangeError);
  });

  it("has no atomic exchange of its own: only whole-word operations exist", () => {
    expect("xchg" in invalid).toBe(false);
    expect(Object.getOwnPropertyNames(BitField.prototype).sort()).toEqual(["constructor", "get", "set"]);
  });
});

describe("atomic operations: values", () => {
  it("READ_ONCE, WRITE_ONCE, xchg, cmpxchg, try_cmpxchg, fetch_add and fetch_sub", () => {
    const got: unknown[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const a = new Atomic("a", 5);
      spawn(
        "t",
        (function* () {
          got.push(yield* READ_ONCE(a));
          yield* WRITE_ONCE(a, 7);
          got.push(yield* xchg(a, 9)); // 7
          got.push(yield* cmpxchg(a, 1, 2)); // fails: 9
          got.push(a.v); // 9
          got.push(yield* cmpxchg(a, 9, 3)); // succeeds: 9
          got.push(yield* try_cmpxchg(a, 4, 5)); // fails
          got.push(yield* try_cmpxchg(a, 3, 5)); // succeeds
          got.push(yield* atomic_fetch_add(a, 10)); // 5
          got.push(yield* atomic_fetch_sub(a, 4)); // 15
          got.push(a.v); // 11
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(got).toEqual([5, 7, 9, 9, 9, { ok: false, old: 3 }, { ok: true, old: 3 }, 5, 15, 11]);
  });

  it("set_bit, clear_bit, test_and_set_bit, test_and_clear_bit and test_bit, above bit 31 too", () => {
    const got: unknown[] = [];
    const r = runOnce(({ spawn }) => {
      bootMachine();
      const a = new Atomic("a");
      spawn(
        "t",
        (function* () {
          yield* set_bit(3, a);
          yield* set_bit(45, a);
          got.push(a.v === 2 ** 45 + 8);
          got.push(yield* test_bit(45, a));
          got.push(yield* test_and_set_bit(45, a)); // was set
          got.push(yield* test_and_set_bit(50, a)); // was clear
          got.push(yield* test_and_clear_bit(3, a)); // was set
          got.push(yield* test_and_clear_bit(3, a)); // now clear
          yield* clear_bit(45, a);
          got.push(yield* test_bit(45, a));
          got.push(a.v === 2 ** 50);
        })(),
      );
    });
    expect(r.status).toBe("ok");
    expect(got).toEqual([true, true, true, false, true, false, false, true]);
  });

  it("each operation is one step; bitfield_store is two (load, then store)", () => {
    const r = runProgram(
      ({ spawn }) => {
        bootMachine();
        const a = new Atomic("a");
        const f = new BitField("f", 2, 1);
        spawn(
          "t",
          (function* () {
            yield* xchg(a, 1);
            yield* set_bit(4, a);
            yield* bitfield_store(a, f, 1);
            yield* bitfield_load(a, f);
          })(),
        );
      },
      { scheduler: new RoundRobinScheduler(), record: true },
    );
    expect(r.trace!.map((s) => `${s.kind}:${s.step}`)).toEqual([
      "rmw:xchg",
      "rmw:set_bit",
      "read:load for f store",
      "write:store f",
      "read:load f",
    ]);
  });
});

describe("atomicity over all schedules", () => {
  it("two fetch_adds never lose an update", () => {
    const finals = outcomes<number>((record) => ({ spawn }) => {
      bootMachine();
      const a = new Atomic("a");
      const end = barrier(2, () => record(a.v));
      const inc = function* (): Gen<void> {
        yield* atomic_fetch_add(a, 1);
        end();
      };
      spawn("a", inc());
      spawn("b", inc());
    });
    expect(new Set(finals)).toEqual(new Set([2]));
  });

  it("a load and a store from two tasks do lose one", () => {
    const finals = outcomes<number>((record) => ({ spawn }) => {
      bootMachine();
      const a = new Atomic("a");
      const end = barrier(2, () => record(a.v));
      const inc = function* (): Gen<void> {
        const v = yield* READ_ONCE(a);
        yield* WRITE_ONCE(a, v + 1);
        end();
      };
      spawn("a", inc());
      spawn("b", inc());
    });
    expect(new Set(finals)).toEqual(new Set([1, 2]));
  });

  it("test_and_set_bit has exactly one winner; set_bit and clear_bit of different bits commute", () => {
    const res = outcomes<[number, number]>((record) => ({ spawn }) => {
      bootMachine();
      const a = new Atomic("a", 0b100);
      let winners = 0;
      const end = barrier(3, () => record([winners, a.v]));
      const take = function* (): Gen<void> {
        if (!(yield* test_and_set_bit(0, a))) winners++;
        end();
      };
      spawn("a", take());
      spawn("b", take());
      spawn(
        "c",
        (function* () {
          yield* set_bit(40, a);
          yield* clear_bit(2, a);
          end();
        })(),
      );
    });
    for (const [winners, v] of res) {
      expect(winners).toBe(1);
      expect(v).toBe(2 ** 40 + 1);
    }
  });
});

describe("use-after-free through an Atomic owned by a freed object", () => {
  const ops: [string, (a: Atomic) => Gen<unknown>][] = [
    ["READ_ONCE", (a) => READ_ONCE(a)],
    ["WRITE_ONCE", (a) => WRITE_ONCE(a, 1)],
    ["xchg", (a) => xchg(a, 1)],
    ["cmpxchg", (a) => cmpxchg(a, 0, 1)],
    ["try_cmpxchg", (a) => try_cmpxchg(a, 0, 1)],
    ["atomic_fetch_add", (a) => atomic_fetch_add(a, 1)],
    ["atomic_fetch_sub", (a) => atomic_fetch_sub(a, 1)],
    ["set_bit", (a) => set_bit(1, a)],
    ["clear_bit", (a) => clear_bit(1, a)],
    ["test_and_set_bit", (a) => test_and_set_bit(1, a)],
    ["test_and_clear_bit", (a) => test_and_clear_bit(1, a)],
    ["test_bit", (a) => test_bit(1, a)],
    ["load f", (a) => bitfield_load(a, new BitField("f", 0, 1))],
    ["load for f store", (a) => bitfield_store(a, new BitField("f", 0, 1), 1)],
  ];
  for (const [step, run] of ops) {
    it(`${step} is checked`, () => {
      const r = runOnce(({ spawn }) => {
        bootMachine();
        const o = kzalloc("thing", "obj");
        const a = new Atomic("word", 0, o);
        spawn(
          "t",
          (function* () {
            yield* kfree(o);
            yield* run(a);
          })(),
        );
      });
      expect(r.violations).toHaveLength(1);
      expect(r.violations[0].invariant).toBe("use-after-free");
      expect(r.violations[0].message).toContain(`did ${step} on obj.word`);
    });
  }
});

/**
 * Seed 003: role.invalid is a one-bit field of the role word, so it cannot be
 * xchg'd alone. Three ways to set it while another task sets another bit of
 * the same word (atomically) and a second "put" races to set it too:
 * the open-coded test-then-store, an xchg of a whole word computed from an
 * earlier load, and a cmpxchg loop on the whole word.
 */
describe("seed 003: setting a one-bit field of a shared word", () => {
  const INVALID = new BitField("invalid", 11, 1);
  const OTHER = 20;

  type Outcome = { winners: number; otherBitKept: boolean };
  type Setter = (role: Atomic) => Gen<boolean>;

  /** `if (root->role.invalid) return false; root->role.invalid = true; return true;` */
  const openCoded: Setter = function* (role) {
    if ((yield* bitfield_load(role, INVALID)) === 1) return false;
    yield* bitfield_store(role, INVALID, 1);
    return true;
  };
  /** xchg(&role.word, word-with-invalid), the new word computed from a load before it. */
  const precomputedXchg: Setter = function* (role) {
    const seen = yield* READ_ONCE(role);
    const old = yield* xchg(role, INVALID.set(seen, 1));
    return INVALID.get(old) === 0;
  };
  /** The whole-word update done right: retry the cmpxchg until the word did not change under us. */
  const cmpxchgLoop: Setter = function* (role) {
    let seen = yield* READ_ONCE(role);
    for (;;) {
      const r = yield* try_cmpxchg(role, seen, INVALID.set(seen, 1));
      if (r.ok) return INVALID.get(seen) === 0;
      seen = r.old;
    }
  };

  function race(setter: Setter, putters: number, otherSetter: boolean): Outcome[] {
    return outcomes<Outcome>((record) => ({ spawn }) => {
      bootMachine();
      const role = new Atomic("role.word", 4);
      let winners = 0;
      const end = barrier(putters + (otherSetter ? 1 : 0), () =>
        record({ winners, otherBitKept: !otherSetter || testBit(role.v, OTHER) }),
      );
      for (let i = 0; i < putters; i++) {
        spawn(
          `put${i}`,
          (function* () {
            if (yield* setter(role)) winners++;
            end();
          })(),
        );
      }
      if (otherSetter) {
        spawn(
          "other",
          (function* () {
            yield* set_bit(OTHER, role);
            end();
          })(),
        );
      }
    });
  }

  it("the open-coded sequence lets two puts both see invalid=0 and both win", () => {
    const res = race(openCoded, 2, false);
    expect(res.some((o) => o.winners === 2)).toBe(true);
    expect(res.some((o) => o.winners === 1)).toBe(true);
  });

  it("the open-coded store loses a concurrent atomic update of another bit of the word", () => {
    const res = race(openCoded, 1, true);
    expect(res.some((o) => !o.otherBitKept)).toBe(true);
    expect(res.some((o) => o.otherBitKept)).toBe(true);
  });

  it("a whole-word xchg has exactly one winner in every schedule", () => {
    const res = race(precomputedXchg, 2, false);
    for (const o of res) expect(o.winners).toBe(1);
  });

  it("but an xchg of a word computed before it still loses a concurrent update of another bit", () => {
    const res = race(precomputedXchg, 1, true);
    expect(res.some((o) => !o.otherBitKept)).toBe(true);
  });

  it("a cmpxchg loop on the whole word has one winner and loses nothing, in every schedule", () => {
    const res = race(cmpxchgLoop, 2, true);
    expect(res.length).toBeGreaterThan(10);
    for (const o of res) {
      expect(o.winners).toBe(1);
      expect(o.otherBitKept).toBe(true);
    }
  });
});
