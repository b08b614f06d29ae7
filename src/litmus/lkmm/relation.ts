/**
 * Binary relations over the events of one candidate execution, as bit matrices: the algebra the
 * cat language gives linux-kernel.cat (union |, intersection &, difference \, sequence ;, inverse
 * ^-1, closures + and *, [S] for a set). Rows are bitsets of 32-bit words, so a sequence costs
 * n * n / 32 word operations for n events.
 */
export class Rel {
  private readonly w: number;
  private constructor(
    readonly n: number,
    private readonly bits: Uint32Array,
  ) {
    this.w = (n + 31) >>> 5;
  }

  static empty(n: number): Rel {
    return new Rel(n, new Uint32Array(n * ((n + 31) >>> 5)));
  }

  /** [S]: the identity on the events where `inSet` holds. */
  static id(n: number, inSet: (i: number) => boolean = () => true): Rel {
    const r = Rel.empty(n);
    for (let i = 0; i < n; i++) if (inSet(i)) r.add(i, i);
    return r;
  }

  /** Every pair (i, j) for which `pred` holds. */
  static where(n: number, pred: (i: number, j: number) => boolean): Rel {
    const r = Rel.empty(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (pred(i, j)) r.add(i, j);
    return r;
  }

  static of(n: number, pairs: Iterable<readonly [number, number]>): Rel {
    const r = Rel.empty(n);
    for (const [i, j] of pairs) r.add(i, j);
    return r;
  }

  has(i: number, j: number): boolean {
    return (this.bits[i * this.w + (j >>> 5)] & (1 << (j & 31))) !== 0;
  }

  add(i: number, j: number): void {
    this.bits[i * this.w + (j >>> 5)] |= 1 << (j & 31);
  }

  private map2(o: Rel, f: (a: number, b: number) => number): Rel {
    const out = Rel.empty(this.n);
    for (let k = 0; k < this.bits.length; k++) out.bits[k] = f(this.bits[k], o.bits[k]);
    return out;
  }

  union(...others: Rel[]): Rel {
    let r: Rel = this;
    for (const o of others) r = r.map2(o, (a, b) => a | b);
    return r;
  }

  inter(o: Rel): Rel {
    return this.map2(o, (a, b) => a & b);
  }

  minus(o: Rel): Rel {
    return this.map2(o, (a, b) => a & ~b);
  }

  /** Row i of this |= row j of `src`. */
  private orRow(i: number, src: Rel, j: number): void {
    for (let k = 0; k < this.w; k++) this.bits[i * this.w + k] |= src.bits[j * this.w + k];
  }

  /** this ; o */
  seq(o: Rel): Rel {
    const out = Rel.empty(this.n);
    for (let i = 0; i < this.n; i++) for (let j = 0; j < this.n; j++) if (this.has(i, j)) out.orRow(i, o, j);
    return out;
  }

  /** r1 ; r2 ; ... */
  static seqAll(first: Rel, ...rest: Rel[]): Rel {
    return rest.reduce((acc, r) => acc.seq(r), first);
  }

  inverse(): Rel {
    return Rel.where(this.n, (i, j) => this.has(j, i));
  }

  /** r? = r | id */
  opt(): Rel {
    return this.union(Rel.id(this.n));
  }

  /** r+ (Warshall on bitsets). */
  plus(): Rel {
    const out = this.map2(this, (a) => a);
    for (let k = 0; k < this.n; k++) for (let i = 0; i < this.n; i++) if (out.has(i, k)) out.orRow(i, out, k);
    return out;
  }

  /** r* = r+ | id */
  star(): Rel {
    return this.plus().opt();
  }

  isEmpty(): boolean {
    return this.bits.every((b) => b === 0);
  }

  irreflexive(): boolean {
    for (let i = 0; i < this.n; i++) if (this.has(i, i)) return false;
    return true;
  }

  acyclic(): boolean {
    return this.plus().irreflexive();
  }

  equals(o: Rel): boolean {
    return this.bits.every((b, k) => b === o.bits[k]);
  }

  pairs(): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.n; i++) for (let j = 0; j < this.n; j++) if (this.has(i, j)) out.push([i, j]);
    return out;
  }
}
