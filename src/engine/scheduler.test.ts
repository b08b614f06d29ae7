import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ChooseOp } from "./op.js";
import { SplitMix64 } from "./rng.js";
import {
  RandomScheduler,
  ReplayMismatch,
  ReplayScheduler,
  RoundRobinScheduler,
  type Scheduler,
} from "./scheduler.js";
import type { Task } from "./task.js";

function task(id: number): Task {
  return {
    id,
    name: `t${id}`,
    parent: -1,
    lane: `t${id}`,
    gen: (function* () {})(),
    pending: null,
    done: false,
    steps: 0,
    frames: [],
    local: undefined,
  };
}

const T = [0, 1, 2, 3, 4].map(task);
const only = (...ids: number[]): Task[] => ids.map((i) => T[i]);
const chooseOp: ChooseOp = { kind: "choose", n: 3, fn: "kvm_fn", step: "pick" };

function mismatch(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ReplayMismatch);
    expect((e as Error).name).toBe("ReplayMismatch");
    return (e as Error).message;
  }
  throw new Error("expected a ReplayMismatch");
}

describe("RoundRobinScheduler", () => {
  it("cycles through the enabled tasks in id order", () => {
    const s: Scheduler = new RoundRobinScheduler();
    const picks = Array.from({ length: 7 }, (_, i) => s.pickTask(only(0, 1, 2), i).id);
    expect(picks).toEqual([0, 1, 2, 0, 1, 2, 0]);
  });

  it("continues after the last pick when the enabled set changes", () => {
    const s: Scheduler = new RoundRobinScheduler();
    expect(s.pickTask(only(0, 1, 2, 3), 0).id).toBe(0);
    expect(s.pickTask(only(0, 2, 3), 1).id).toBe(2);
    expect(s.pickTask(only(0, 1), 2).id).toBe(0);
    expect(s.pickTask(only(1, 4), 3).id).toBe(1);
    expect(s.pickTask(only(1, 4), 4).id).toBe(4);
    expect(s.pickTask(only(1, 4), 5).id).toBe(1);
  });

  it("answers data choices with 0", () => {
    const s: Scheduler = new RoundRobinScheduler();
    expect(s.pickValue(3, chooseOp, T[0])).toBe(0);
  });
});

describe("RandomScheduler", () => {
  it("draws from its SplitMix64: nextInt(#enabled) for tasks, nextInt(n) for values", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (seed) => {
        const s: Scheduler = new RandomScheduler(seed);
        const ref = new SplitMix64(seed);
        const sets = [only(0, 1), only(0, 1, 2, 3, 4), only(2, 4, 3)];
        for (let i = 0; i < 12; i++) {
          const en = sets[i % 3];
          expect(s.pickTask(en, i)).toBe(en[ref.nextInt(en.length)]);
          expect(s.pickValue(5, chooseOp, T[0])).toBe(ref.nextInt(5));
        }
      }),
      { numRuns: 50 },
    );
  });

  it("seed 0 picks pinned tasks (guards replay seeds across upgrades)", () => {
    const s: Scheduler = new RandomScheduler(0n);
    const picks = Array.from({ length: 8 }, (_, i) => s.pickTask(only(0, 1, 2, 3), i).id);
    // High halves of SplitMix64(0) mod 4 (n = 4 never rejects): 0xe220a839, 0x6e789e6a,
    // 0x06c45d18, 0xf88bb8a8, 0x1b39896a, 0x53cb9f0c, 0x2c829abe, 0xc584133a.
    expect(picks).toEqual([1, 2, 0, 0, 2, 0, 2, 2]);
  });

  it("two schedulers with one seed agree; different seeds diverge", () => {
    const a: Scheduler = new RandomScheduler(99n);
    const b: Scheduler = new RandomScheduler(99n);
    const c: Scheduler = new RandomScheduler(100n);
    const pa: number[] = [];
    const pb: number[] = [];
    const pc: number[] = [];
    for (let i = 0; i < 64; i++) {
      pa.push(a.pickTask(T, i).id);
      pb.push(b.pickTask(T, i).id);
      pc.push(c.pickTask(T, i).id);
    }
    expect(pa).toEqual(pb);
    expect(pa).not.toEqual(pc);
  });
});

describe("ReplayScheduler", () => {
  it("follows the recorded task ids and values in order", () => {
    const s = new ReplayScheduler([2, 1, 0, 4]);
    expect(s.consumed).toBe(0);
    expect(s.exhausted).toBe(false);
    expect(s.pickTask(only(0, 1, 2), 0).id).toBe(2);
    expect(s.pickValue(2, chooseOp, T[0])).toBe(1);
    expect(s.pickTask(only(0, 3), 2).id).toBe(0);
    expect(s.consumed).toBe(3);
    expect(s.pickTask(only(3, 4), 3).id).toBe(4);
    expect(s.exhausted).toBe(true);
  });

  it("fails loudly when the recorded task is not enabled", () => {
    const s = new ReplayScheduler([0, 0, 1, 2, 3, 4, 0, 3]);
    for (let i = 0; i < 7; i++) s.pickTask(T, i);
    expect(mismatch(() => s.pickTask(only(0, 2), 12))).toBe(
      "recorded choice 7 names task 3, but only tasks {0,2} are enabled at step 12",
    );
    expect(s.consumed).toBe(7);
  });

  it("fails loudly when a recorded value is out of range", () => {
    const s = new ReplayScheduler([3]);
    expect(mismatch(() => s.pickValue(2, chooseOp, T[0]))).toBe(
      "recorded choice 0 is value 3, but kvm_fn:pick offers only 2 values",
    );
  });

  it("fails when the recording runs out and there is no fallback", () => {
    const s = new ReplayScheduler([1]);
    s.pickTask(only(0, 1), 0);
    expect(mismatch(() => s.pickTask(only(0, 2), 5))).toBe(
      "replay ended after 1 choices, but step 5 still has tasks {0,2} enabled",
    );
    expect(mismatch(() => s.pickValue(3, chooseOp, T[0]))).toBe(
      "replay ended after 1 choices, before the data choice kvm_fn:pick",
    );
  });

  it("defers to `then` once the recording is used up", () => {
    const s = new ReplayScheduler([2], new RoundRobinScheduler());
    expect(s.pickTask(only(0, 1, 2), 0).id).toBe(2);
    expect(s.pickTask(only(0, 1, 2), 1).id).toBe(0);
    expect(s.pickTask(only(0, 1, 2), 2).id).toBe(1);
    expect(s.pickValue(4, chooseOp, T[0])).toBe(0);
    expect(s.consumed).toBe(1);
  });

  it("an empty recording with a fallback is the fallback", () => {
    const seed = 5n;
    const s = new ReplayScheduler([], new RandomScheduler(seed));
    const ref: Scheduler = new RandomScheduler(seed);
    for (let i = 0; i < 10; i++) expect(s.pickTask(T, i)).toBe(ref.pickTask(T, i));
  });
});
