/**
 * Host-CPU occupancy and wake-up latency: what a host administrator sees of a simulated run (top's
 * per-CPU busy fraction, cyclictest's latency), as plain data the simulator fills in.
 */

/** One host CPU over a run. */
export interface SimCpuStats {
  readonly cpu: number;
  /**
   * Time the CPU was not idle: a task on it (executing steps or spinning for a lock), switching
   * tasks, or running a softirq. A spinning task occupies its CPU as much as a computing one.
   */
  readonly busyNs: number;
  /** Of busyNs, time spent executing steps (the rest is spinning and switching). */
  readonly execNs: number;
  /** busyNs / the run's virtual time (0 for an empty run). */
  readonly occupancy: number;
}

/** Wake-up latencies of one task's timer sleeps: from each timer's expiry to the task running again. */
export interface SimWakeLatency {
  readonly count: number;
  readonly medianNs: number;
  /** The 99th percentile (nearest rank). */
  readonly p99Ns: number;
  readonly maxNs: number;
}

/** Nearest-rank percentile `q` (0..1] of sorted `xs` (non-empty). */
function percentile(xs: readonly number[], q: number): number {
  return xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))];
}

/** The summary of `latencies`, or null when there were none. */
export function summariseLatencies(latencies: readonly number[]): SimWakeLatency | null {
  if (latencies.length === 0) return null;
  const xs = [...latencies].sort((a, b) => a - b);
  return {
    count: xs.length,
    medianNs: percentile(xs, 0.5),
    p99Ns: percentile(xs, 0.99),
    maxNs: xs[xs.length - 1],
  };
}

/** Per-CPU busy and executing time, accumulated while the simulator runs. */
export class CpuAccounting {
  private readonly busy: number[];
  private readonly exec: number[];
  /** When the task now on each CPU was switched in (-1: idle). */
  private readonly since: number[];

  constructor(cpus: number) {
    this.busy = new Array(cpus).fill(0);
    this.exec = new Array(cpus).fill(0);
    this.since = new Array(cpus).fill(-1);
  }

  /** A task was put on CPU `c` at `at`. */
  on(c: number, at: number): void {
    this.since[c] = at;
  }

  /** The task left CPU `c` at `at` (switched out, or finished at the end of its last step). */
  off(c: number, at: number): void {
    if (this.since[c] < 0) return;
    this.busy[c] += Math.max(0, at - this.since[c]);
    this.since[c] = -1;
  }

  /** CPU `c` spent `ns` busy with no task on it: switching tasks, or a softirq on an idle CPU. */
  taskless(c: number, ns: number): void {
    this.busy[c] += ns;
  }

  /** CPU `c` executed a step costing `ns`. */
  executed(c: number, ns: number): void {
    this.exec[c] += ns;
  }

  /** The figures at the end of a run of `virtualNs`, closing what is still on a CPU at `endNs`. */
  finish(virtualNs: number, endNs: number): SimCpuStats[] {
    for (let c = 0; c < this.busy.length; c++) this.off(c, endNs);
    return this.busy.map((b, cpu) => {
      const busyNs = Math.min(b, virtualNs);
      return { cpu, busyNs, execNs: this.exec[cpu], occupancy: virtualNs > 0 ? busyNs / virtualNs : 0 };
    });
  }
}
