import { runProgram } from "/work/main/src/engine/runtime.js";
import { RandomScheduler, ReplayScheduler } from "/work/main/src/engine/scheduler.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "/work/main/src/kernel/atomic.js";
import { bootMachine } from "/work/main/src/kernel/machine.js";
import { Spinlock, spin_lock, spin_unlock } from "/work/main/src/kernel/spinlock.js";
const prog = ({ spawn }: any) => {
  bootMachine({ needResched: "never" });
  const lock = new Spinlock("lock");
  const counter = new Atomic("counter");
  for (let t = 0; t < 4; t++) {
    const mine = new Atomic(`p${t}`);
    spawn(`t${t}`, (function* () {
      for (let i = 0; i < 2500; i++) {
        const p = yield* READ_ONCE(mine);
        yield* WRITE_ONCE(mine, p + 1);
        yield* spin_lock(lock);
        const v = yield* READ_ONCE(counter);
        yield* WRITE_ONCE(counter, v + 1);
        yield* spin_unlock(lock);
      }
    })());
  }
};
const rec = runProgram(prog, { scheduler: new RandomScheduler(1n), maxSteps: 1e9 });
const t0 = performance.now();
let n = 0;
for (let i = 0; i < 200; i++) n += runProgram(prog, { scheduler: new ReplayScheduler(rec.choices), maxSteps: 1e9 }).stats.steps;
console.log((n / (performance.now() - t0) / 1000).toFixed(2), "M/s");
