import { BEACON } from "./beacon.js";
import { host } from "./host.js";
import type { Gen } from "./op.js";
import { describeValue, isGenerator } from "./user-frame.js";
import { UserCodeError } from "./violation.js";

/**
 * A named model function. Calling it pushes its name on the task's frame stack
 * (so every op it yields is labelled with the kernel function that did it),
 * and routes the call through a per-run override when a mutation replaced it.
 * An override receives the original implementation first, so it may wrap it.
 */
export type ModelFn<A extends unknown[], R> = ((...args: A) => Gen<R>) & {
  readonly kernelName: string;
  readonly impl: (...args: A) => Gen<R>;
};

export type Override<A extends unknown[], R> = (original: (...args: A) => Gen<R>, ...args: A) => Gen<R>;

/** On an exception: the innermost model function it was thrown in. */
export const THROWN_IN = Symbol("tdplab.thrownIn");

/** Names of every model function defined so far (the modules that define them register on load). */
const REGISTERED = new Set<string>();

export function registeredModelFns(): ReadonlySet<string> {
  return REGISTERED;
}

export function modelFn<A extends unknown[], R>(name: string, impl: (...args: A) => Gen<R>): ModelFn<A, R> {
  REGISTERED.add(name);
  const wrapped = function* (...args: A): Gen<R> {
    const h = host();
    const frames = h.current.frames;
    const ov = h.overrides.size === 0 ? undefined : (h.overrides.get(name) as Override<A, R> | undefined);
    frames.push(name);
    // A loop that never yields is reported in the innermost model function it runs in.
    const beacon = BEACON.current;
    if (beacon !== null) beacon.frame(name);
    if (ov !== undefined) h.overrideRan(name);
    const cov = h.coverage;
    if (cov !== null) cov.add(name);
    try {
      if (ov === undefined) return yield* impl(...args);
      const it = ov(impl, ...args);
      if (!isGenerator(it)) {
        throw new UserCodeError(
          `the override of ${name} returned ${describeValue(it)}, not a generator: write it as a generator function (function* or *${name}(original, ...args) { ... })`,
        );
      }
      return yield* it;
    } catch (e) {
      // The innermost model function an exception left: where a user's error is reported.
      if (typeof e === "object" && e !== null && !(THROWN_IN in e))
        Object.defineProperty(e, THROWN_IN, { value: name });
      throw e;
    } finally {
      frames.pop();
      if (beacon !== null) beacon.frame(frames.length === 0 ? "<task>" : frames[frames.length - 1]);
    }
  };
  return Object.assign(wrapped, { kernelName: name, impl });
}

/** Name of the innermost model function of the running task. */
export function currentFn(): string {
  const f = host().current.frames;
  return f.length === 0 ? "<task>" : f[f.length - 1];
}
