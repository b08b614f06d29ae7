import type { ChooseOp } from "./op.js";
import { SplitMix64 } from "./rng.js";
import type { Task } from "./task.js";

/**
 * Picks what runs next. The runtime asks only when there is a real choice:
 * pickTask with two or more enabled tasks, pickValue with n >= 2.
 * Implementations return a task from `enabled` and a value in [0, n).
 */
export interface Scheduler {
  pickTask(enabled: readonly Task[], stepIndex: number): Task;
  pickValue(n: number, op: ChooseOp, task: Task): number;
}

/** Runs each enabled task in turn, in id order after the last one picked. */
export class RoundRobinScheduler implements Scheduler {
  private last = -1;
  pickTask(enabled: readonly Task[]): Task {
    let pick = enabled[0];
    for (const t of enabled) {
      if (t.id > this.last) {
        pick = t;
        break;
      }
    }
    this.last = pick.id;
    return pick;
  }
  pickValue(): number {
    return 0;
  }
}

/** Uniform random choices from a seeded SplitMix64. */
export class RandomScheduler implements Scheduler {
  readonly rng: SplitMix64;
  constructor(seed: bigint | number) {
    this.rng = new SplitMix64(seed);
  }
  pickTask(enabled: readonly Task[]): Task {
    return enabled[this.rng.nextInt(enabled.length)];
  }
  pickValue(n: number): number {
    return this.rng.nextInt(n);
  }
}

export class ReplayMismatch extends Error {
  override name = "ReplayMismatch";
}

/**
 * Follows a recorded choice sequence: task ids at scheduling points, values at
 * data choices. A mismatch fails loudly. When the sequence runs out, it defers
 * to `then`, or fails if there is none.
 */
export class ReplayScheduler implements Scheduler {
  private pos = 0;
  constructor(
    private readonly choices: readonly number[],
    private readonly then?: Scheduler,
  ) {}

  get consumed(): number {
    return this.pos;
  }

  get exhausted(): boolean {
    return this.pos >= this.choices.length;
  }

  pickTask(enabled: readonly Task[], stepIndex: number): Task {
    // Hot path of every replayed run: the recorded task is enabled.
    const pos = this.pos;
    if (pos < this.choices.length) {
      const want = this.choices[pos];
      for (let i = 0; i < enabled.length; i++) {
        const t = enabled[i];
        if (t.id === want) {
          this.pos = pos + 1;
          return t;
        }
      }
    }
    return this.pickTaskOffRecord(enabled, stepIndex);
  }

  /** The recording ran out, or names a task that is not enabled. */
  private pickTaskOffRecord(enabled: readonly Task[], stepIndex: number): Task {
    if (this.pos >= this.choices.length) {
      if (this.then) return this.then.pickTask(enabled, stepIndex);
      throw new ReplayMismatch(
        `replay ended after ${this.pos} choices, but step ${stepIndex} still has tasks {${enabled.map((t) => t.id).join(",")}} enabled`,
      );
    }
    throw new ReplayMismatch(
      `recorded choice ${this.pos} names task ${this.choices[this.pos]}, but only tasks {${enabled.map((t) => t.id).join(",")}} are enabled at step ${stepIndex}`,
    );
  }

  pickValue(n: number, op: ChooseOp, task: Task): number {
    if (this.pos >= this.choices.length) {
      if (this.then) return this.then.pickValue(n, op, task);
      throw new ReplayMismatch(
        `replay ended after ${this.pos} choices, before the data choice ${op.fn}:${op.step}`,
      );
    }
    const v = this.choices[this.pos];
    if (v >= n) {
      throw new ReplayMismatch(
        `recorded choice ${this.pos} is value ${v}, but ${op.fn}:${op.step} offers only ${n} values`,
      );
    }
    this.pos++;
    return v;
  }
}
