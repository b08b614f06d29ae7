import { setActiveHost } from "../src/engine/host.js";
import { Runtime } from "../src/engine/runtime.js";
import { RoundRobinScheduler } from "../src/engine/scheduler.js";
import { Atomic, READ_ONCE, WRITE_ONCE } from "../src/kernel/atomic.js";
import { bootMachine } from "../src/kernel/machine.js";
import { Spinlock, spin_lock, spin_unlock } from "../src/kernel/spinlock.js";
const N = 5000;
function once(): number {
  const rt = new Runtime({ scheduler: new RoundRobinScheduler() });
  const gens: any[] = [];
  rt.start(({ spawn }) => {
    bootMachine({ needResched: "never" });
    const lock = new Spinlock("lock");
    const counter = new Atomic("counter");
    for (let t = 0; t < 4; t++) {
      const mine = new Atomic(`p${t}`);
      spawn(`t${t}`, (function* () {
        for (let i = 0; i < N; i++) {
          const p = yield* READ_ONCE(mine);
          yield* WRITE_ONCE(mine, p + 1);
          yield* spin_lock(lock);
          const v = yield* READ_ONCE(counter);
          yield* WRITE_ONCE(counter, v + 1);
          yield* spin_unlock(lock);
        }
      })());
    }
  });
  // bare loop: run each task to completion one after another (no contention since lock released in same task)
  setActiveHost(rt);
  let steps = 0;
  for (const t of rt.tasks) {
    rt.current = t;
    for (;;) { const r = t.gen.next(undefined); if (r.done) break; steps++; }
  }
  setActiveHost(null);
  return steps;
}
for (let k = 0; k < 10; k++) {
  const t0 = performance.now(); const s = once(); const dt = performance.now() - t0;
  if (k > 3) console.log((s / dt / 1000).toFixed(2), "M/s model-only");
}
