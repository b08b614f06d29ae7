import type { DporSearcher, DporStateJson } from "./dpor.js";
import type { RunOutcome, Searcher, StopCheck } from "./outcome.js";
import type { PctSearcher, RandomSearcher } from "./sample.js";

/**
 * The portfolio strategy: exhaustive DPOR, with random and PCT runs interleaved to find a
 * shallow bug fast. Only DPOR decides completeness: the sampled runs add counterexamples, never
 * coverage, and they are not counted as executions (each DPOR execution is one trace class, and
 * the counts stay comparable with plain `dpor`).
 *
 * The interleaving is a fixed function of the run index, never of the clock, so the same seed
 * gives the same runs on every machine: one sampled run after every DPOR run for the first
 * FRONT_SAMPLES samples (bugs a random schedule hits at all are usually hit early), then one
 * after every LATER_EVERY DPOR runs. Samples alternate between a random walk and PCT.
 */
export const FRONT_SAMPLES = 256;
export const LATER_EVERY = 16;

export interface PortfolioStateJson {
  readonly dpor: DporStateJson;
  readonly randomRuns: number;
  readonly pctRuns: number;
  readonly pctK: number;
  readonly dporRuns: number;
}

export class PortfolioSearcher implements Searcher {
  private dporRuns = 0;
  private randomRuns = 0;
  private pctRuns = 0;
  private lastSampled = false;

  constructor(
    private readonly dpor: DporSearcher,
    private readonly random: RandomSearcher,
    private readonly pct: PctSearcher,
  ) {}

  get boundCut(): boolean {
    return this.dpor.boundCut;
  }

  get counters(): Searcher["counters"] {
    return this.dpor.counters;
  }

  /** Samples run so far. */
  get sampled(): number {
    return this.randomRuns + this.pctRuns;
  }

  private sampleNext(): boolean {
    const s = this.sampled;
    if (s < FRONT_SAMPLES) return s < this.dporRuns;
    return s - FRONT_SAMPLES < Math.floor((this.dporRuns - FRONT_SAMPLES) / LATER_EVERY);
  }

  run(stop?: StopCheck): RunOutcome {
    if (this.dporRuns > 0 && this.sampleNext()) {
      this.lastSampled = true;
      const useRandom = this.randomRuns <= this.pctRuns;
      const out = useRandom ? this.random.run(stop) : this.pct.run(stop);
      if (out.interrupted) return out;
      if (useRandom) this.randomRuns++;
      else this.pctRuns++;
      // A sampled run truncated by the depth bound is a schedule DPOR runs too (every trace is
      // one of its executions), and DPOR reports the cut itself.
      return { ...out, depthCut: false, sampled: true };
    }
    this.lastSampled = false;
    const out = this.dpor.run(stop);
    if (!out.interrupted) this.dporRuns++;
    return out;
  }

  advance(): boolean {
    return this.lastSampled ? true : this.dpor.advance();
  }

  checkpointState(): PortfolioStateJson {
    return {
      dpor: this.dpor.checkpointState(),
      randomRuns: this.randomRuns,
      pctRuns: this.pctRuns,
      pctK: this.pct.k,
      dporRuns: this.dporRuns,
    };
  }

  restore(s: PortfolioStateJson): void {
    this.dpor.restore(s.dpor);
    this.random.skipTo(s.randomRuns);
    this.pct.skipTo(s.pctRuns);
    this.pct.k = s.pctK;
    this.randomRuns = s.randomRuns;
    this.pctRuns = s.pctRuns;
    this.dporRuns = s.dporRuns;
  }

  memory(): { stack: number; wakeupNodes: number } {
    return this.dpor.memory();
  }
}
