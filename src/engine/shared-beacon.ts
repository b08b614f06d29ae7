import type { Beacon } from "./beacon.js";
import type { Task } from "./task.js";

/**
 * A Beacon over a SharedArrayBuffer: the thread that runs the engine writes, a watchdog thread
 * reads whenever it likes, and neither waits for the other. Only the writer's thread writes (no
 * read-modify-write is needed); names go into an append-only string table the reader decodes.
 */

// Int32 slots of the header.
const COUNTER = 0; // bumped whenever control enters or leaves a task's code
const DEPTH = 1; // nesting of entered code; 0 while the engine itself runs
const TASK = 2; // string id of the task entered last (-1: none)
const FN = 3; // string id of its innermost model function
const STEP = 4; // step index at which it was entered
const NCHOICES = 5; // choices of the current run published so far
const OVERFLOW = 6; // 1 when the current run has more choices than fit
const NSTRINGS = 7;
const STRBYTES = 8;
const RUNS = 9; // runs started
const HEADER = 16;

const MAX_STRINGS = 4096;
const STRING_BYTES = 1 << 16;

export interface BeaconLayout {
  /** Choices of one run that fit; a longer run is published as overflowed (no replay string). */
  readonly choiceCapacity: number;
}

/** A buffer for a SharedBeacon with room for `choiceCapacity` choices per run. */
export function beaconBuffer(layout: BeaconLayout): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * (HEADER + layout.choiceCapacity + MAX_STRINGS) + STRING_BYTES);
}

function views(sab: SharedArrayBuffer) {
  const ints = new Int32Array(sab, 0, (sab.byteLength - STRING_BYTES) / 4);
  const cap = ints.length - HEADER - MAX_STRINGS;
  return {
    ints,
    cap,
    ends: new Int32Array(sab, 4 * (HEADER + cap), MAX_STRINGS),
    bytes: new Uint8Array(sab, sab.byteLength - STRING_BYTES, STRING_BYTES),
  };
}

/** The writing side, installed in the engine's thread as BEACON.current. */
export class SharedBeacon implements Beacon {
  private readonly ints: Int32Array;
  private readonly cap: number;
  private readonly ends: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly ids = new Map<string, number>();
  private readonly encoder = new TextEncoder();
  private nChoices = 0;
  private counter = 0;
  private task = -1;
  private fn = -1;
  private step = -1;
  /** What was published for each level of entered code, to restore on leave(). */
  private readonly stack: number[] = [];

  constructor(sab: SharedArrayBuffer) {
    const v = views(sab);
    this.ints = v.ints;
    this.cap = v.cap;
    this.ends = v.ends;
    this.bytes = v.bytes;
    this.publish();
  }

  // The per-step fields are plain stores: a reader looks hundreds of milliseconds after a write,
  // and an aligned 32-bit store is never torn, so the fences of Atomics.store would buy nothing
  // but cost every step. The string table, read by id, is published with Atomics (see id()).

  run(): void {
    this.nChoices = 0;
    const ints = this.ints;
    ints[OVERFLOW] = 0;
    ints[NCHOICES] = 0;
    ints[RUNS]++;
  }

  choice(value: number): void {
    const n = this.nChoices++;
    if (n >= this.cap) {
      this.ints[OVERFLOW] = 1;
      return;
    }
    this.ints[HEADER + n] = value;
    this.ints[NCHOICES] = n + 1;
  }

  enter(task: Task, step: number): void {
    this.stack.push(this.task, this.fn, this.step);
    const f = task.frames;
    this.task = this.id(task.name);
    this.fn = this.id(f.length === 0 ? "<task>" : f[f.length - 1]);
    this.step = step;
    this.publish();
  }

  leave(): void {
    const s = this.stack;
    this.step = s.pop() ?? -1;
    this.fn = s.pop() ?? -1;
    this.task = s.pop() ?? -1;
    this.publish();
  }

  /**
   * A module of the user's is being imported (its top-level code may loop): published as code of
   * the pseudo-task IMPORT_TASK in `what`, until leave().
   */
  loading(what: string): void {
    this.stack.push(this.task, this.fn, this.step);
    this.task = this.id(IMPORT_TASK);
    this.fn = this.id(what);
    this.step = -1;
    this.publish();
  }

  frame(fn: string): void {
    this.fn = this.id(fn);
    this.ints[FN] = this.fn;
  }

  private publish(): void {
    const ints = this.ints;
    ints[TASK] = this.task;
    ints[FN] = this.fn;
    ints[STEP] = this.step;
    ints[DEPTH] = this.stack.length / 3;
    ints[COUNTER] = ++this.counter;
  }

  /** The string table id of `s`, appending it on first use (-1 once the table is full). */
  private id(s: string): number {
    const hit = this.ids.get(s);
    if (hit !== undefined) return hit;
    const n = Atomics.load(this.ints, NSTRINGS);
    const start = Atomics.load(this.ints, STRBYTES);
    const enc = this.encoder.encode(s);
    if (n >= MAX_STRINGS || start + enc.length > STRING_BYTES) return -1;
    this.bytes.set(enc, start);
    Atomics.store(this.ends, n, start + enc.length);
    Atomics.store(this.ints, STRBYTES, start + enc.length);
    // Published last: a reader that sees the count sees the bytes.
    Atomics.store(this.ints, NSTRINGS, n + 1);
    this.ids.set(s, n);
    return n;
  }
}

/** The task name a beacon publishes while a user's module is imported (SharedBeacon.loading). */
export const IMPORT_TASK = "<import>";

/** Whether a task's code runs, and the counter that changes whenever control enters or leaves it. */
export function beaconPulse(sab: SharedArrayBuffer): { readonly counter: number; readonly inTask: boolean } {
  const ints = new Int32Array(sab, 0, HEADER);
  return { counter: Atomics.load(ints, COUNTER), inTask: Atomics.load(ints, DEPTH) > 0 };
}

/** What a SharedBeacon says at one instant. */
export interface BeaconSnapshot {
  /** Changes whenever a task's code is entered or left: equal counters mean no primitive was reached. */
  readonly counter: number;
  /** True while a task's code (or a scenario's setup) runs, false while the engine runs. */
  readonly inTask: boolean;
  readonly task: string | null;
  readonly fn: string | null;
  readonly step: number;
  readonly runs: number;
  /** The current run's choices so far, or null if there were more than the buffer holds. */
  readonly choices: readonly number[] | null;
}

/** Read a SharedBeacon's buffer (from any thread). */
export function readBeacon(sab: SharedArrayBuffer): BeaconSnapshot {
  const { ints, cap, ends, bytes } = views(sab);
  const decoder = new TextDecoder();
  const str = (id: number): string | null => {
    if (id < 0 || id >= Atomics.load(ints, NSTRINGS)) return null;
    const start = id === 0 ? 0 : Atomics.load(ends, id - 1);
    // Decoders refuse views of shared memory: copy the bytes out first.
    return decoder.decode(bytes.slice(start, Atomics.load(ends, id)));
  };
  const n = Math.min(Atomics.load(ints, NCHOICES), cap);
  const choices: number[] = [];
  for (let i = 0; i < n; i++) choices.push(Atomics.load(ints, HEADER + i));
  return {
    counter: Atomics.load(ints, COUNTER),
    inTask: Atomics.load(ints, DEPTH) > 0,
    task: str(Atomics.load(ints, TASK)),
    fn: str(Atomics.load(ints, FN)),
    step: Atomics.load(ints, STEP),
    runs: Atomics.load(ints, RUNS),
    choices: Atomics.load(ints, OVERFLOW) === 1 ? null : choices,
  };
}
