import { SplitMix64 } from "../rng.js";

/**
 * Grace periods in virtual time (Tree RCU's shape, not its code): grace periods run one after
 * another; a wait that starts while a grace period is in flight needs the NEXT one, because the
 * current one may have started before the wait's readers did. Waits that arrive during the same
 * grace period share the next one, which is how call_rcu() batches callbacks. Each grace period's
 * length is drawn from [min, max] with a seeded generator, so runs are reproducible.
 */
export class RcuClock {
  private readonly rng: SplitMix64;
  private curStart = Number.NEGATIVE_INFINITY;
  private curEnd = Number.NEGATIVE_INFINITY;
  private nextEnd: number | null = null;
  /** Grace periods started so far. */
  started = 0;

  constructor(
    private readonly range: { readonly min: number; readonly max: number },
    seed: bigint | number,
  ) {
    this.rng = new SplitMix64(seed);
  }

  private sample(): number {
    this.started++;
    const { min, max } = this.range;
    return min + Math.floor(this.rng.nextFloat() * (max - min + 1));
  }

  /** When a grace-period wait that starts at `t` is over (`t` roughly non-decreasing across calls). */
  doneAt(t: number): number {
    // Roll forward: the queued grace period started when the current one ended.
    while (this.nextEnd !== null && t >= this.curEnd) {
      this.curStart = this.curEnd;
      this.curEnd = this.nextEnd;
      this.nextEnd = null;
    }
    if (t >= this.curEnd) {
      this.curStart = t;
      this.curEnd = t + this.sample();
      return this.curEnd;
    }
    // A wait that began no later than the current grace period started is covered by it.
    if (t <= this.curStart) return this.curEnd;
    if (this.nextEnd === null) this.nextEnd = this.curEnd + this.sample();
    return this.nextEnd;
  }
}
