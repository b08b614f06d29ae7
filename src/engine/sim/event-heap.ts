/** A simulator event: something to reconsider at virtual time `time`; `seq` breaks ties in FIFO order. */
export interface SimEvent {
  readonly time: number;
  readonly seq: number;
  /** The CPU that should make a scheduling decision. */
  readonly cpu: number;
}

/** Binary min-heap on (time, seq): the same inputs always pop in the same order. */
export class EventHeap {
  private readonly a: SimEvent[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.a.length;
  }

  push(time: number, cpu: number): void {
    const a = this.a;
    a.push({ time, seq: this.nextSeq++, cpu });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }

  pop(): SimEvent | undefined {
    const a = this.a;
    if (a.length === 0) return undefined;
    const top = a[0];
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l], a[m])) m = l;
        if (r < a.length && before(a[r], a[m])) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

function before(x: SimEvent, y: SimEvent): boolean {
  return x.time < y.time || (x.time === y.time && x.seq < y.seq);
}
