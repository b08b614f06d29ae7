import type { Gen } from "../engine/op.js";
import { write_lock, write_unlock } from "../kernel/rwlock.js";
import { pte_list_add } from "./pte_list.js";
import { kvm_age_gfn, kvm_test_age_gfn, kvm_zap_all_rmap_sptes, kvm_zap_one_rmap_spte } from "./rmap.js";
import { cpuWriteSetsDirty, mmu_spte_set } from "./rmap_spte.js";
import { leafFor, type RmapScenario, type RmapTask, type RmapWorld } from "./rmap_testkit.js";

/**
 * Two-task programs for the seed-004 protocol: a writer under the write
 * mmu_lock (or a vCPU setting D) against a lockless ager. Each is small
 * enough for plain exhaustive enumeration.
 */

/** The notifier's clear_young on every rmap of the world. */
export const ager: RmapTask = {
  name: "ager",
  body: (w) =>
    (function* (): Gen<void> {
      yield* kvm_age_gfn(w.kvm, w.heads);
    })(),
};

/** The notifier's test_young on every rmap of the world. */
export const testAger: RmapTask = {
  name: "test-ager",
  body: (w) =>
    (function* (): Gen<void> {
      yield* kvm_test_age_gfn(w.kvm, w.heads);
    })(),
};

/** A shadow-MMU writer: takes the write mmu_lock around `body`. */
export function writer(name: string, body: (w: RmapWorld) => Gen<void>): RmapTask {
  return {
    name,
    body: (w) =>
      (function* (): Gen<void> {
        yield* write_lock(w.kvm.mmu_lock);
        yield* body(w);
        yield* write_unlock(w.kvm.mmu_lock);
      })(),
  };
}

/** Install SPTE `i` and add it to rmap 0 (mmu_set_spte + rmap_add). */
function* mapSpte(w: RmapWorld, i: number): Gen<void> {
  yield* mmu_spte_set(w.ctx, w.sptes[i], leafFor(i));
  yield* pte_list_add(w.kvm, w.cache(), w.sptes[i], w.heads[0]);
}

/** A writer that maps SPTE `i` into rmap 0 under the write mmu_lock. */
export function mappingWriter(i: number): RmapTask {
  return writer(`writer${i}`, (w) => mapSpte(w, i));
}

/**
 * `writers` writers each mapping one more SPTE into an rmap that starts empty (the first entry
 * is seed 004's case, the second turns it into a desc chain, the third grows the desc), against
 * `agers` lockless agers, clear_young and test_young alternately: the many-writer, many-ager
 * form of seed 004.
 */
export function agingScenario(writers: number, agers: number): RmapScenario {
  const tasks: RmapTask[] = [];
  for (let i = 0; i < writers; i++) tasks.push(mappingWriter(i));
  for (let i = 0; i < agers; i++) tasks.push({ ...(i % 2 === 0 ? ager : testAger), name: `ager${i}` });
  return { sptes: writers, pteListExt: 2, tasks };
}

/** Seed 004's question: the ager finds the rmap empty while the writer adds its first entry. */
export const emptyRace: RmapScenario = {
  sptes: 1,
  tasks: [writer("writer", (w) => mapSpte(w, 0)), ager],
};

/** The writer turns a one-SPTE rmap into a desc while the ager walks the one SPTE. */
export const addToSingle: RmapScenario = {
  sptes: 2,
  initial: [[0]],
  tasks: [writer("writer", (w) => mapSpte(w, 1)), ager],
};

/** The writer appends into the head desc in place (under the bit) while the ager walks it. */
export const appendInDesc: RmapScenario = {
  sptes: 3,
  pteListExt: 3,
  initial: [[0, 1]],
  tasks: [writer("writer", (w) => mapSpte(w, 2)), ager],
};

/** The writer zaps the only SPTE of the head desc, which is freed, while the ager walks the chain. */
export const zapOneFreesHeadDesc: RmapScenario = {
  sptes: 3,
  pteListExt: 2,
  initial: [[0, 1, 2]],
  tasks: [writer("writer", (w) => kvm_zap_one_rmap_spte(w.kvm, w.heads[0], w.sptes[2])), ager],
};

/** The writer zaps the whole rmap and frees its desc while the ager walks it. */
export const zapAll: RmapScenario = {
  sptes: 2,
  pteListExt: 2,
  initial: [[0, 1]],
  tasks: [
    writer("writer", function* (w) {
      yield* kvm_zap_all_rmap_sptes(w.kvm, w.heads[0]);
    }),
    ager,
  ],
};

/** A vCPU writes through the SPTE (the CPU sets A and D) while the ager clears A. */
export const dirtyVsAger: RmapScenario = {
  sptes: 1,
  initial: [[0]],
  tasks: [
    {
      name: "vcpu",
      body: (w) =>
        (function* (): Gen<void> {
          yield* cpuWriteSetsDirty(w.ctx, w.sptes[0]);
        })(),
    },
    ager,
  ],
};

/** Two lockless agers on the same rmap: the bit orders them. */
export const twoAgers: RmapScenario = {
  sptes: 2,
  pteListExt: 2,
  initial: [[0, 1]],
  tasks: [ager, { ...ager, name: "ager2" }],
};

/** test_young (stops at the first young SPTE, unlocking on the way out) against a zap. */
export const testAgeVsZap: RmapScenario = {
  sptes: 2,
  pteListExt: 2,
  initial: [[0, 1]],
  tasks: [writer("writer", (w) => kvm_zap_one_rmap_spte(w.kvm, w.heads[0], w.sptes[0])), testAger],
};

/** zapAll, then a second write-locked section that maps an SPTE into the emptied rmap again. */
export const zapThenRefill: RmapScenario = {
  ...zapAll,
  tasks: [
    {
      name: "writer",
      body: (w) =>
        (function* (): Gen<void> {
          yield* writer("zap", function* (w) {
            yield* kvm_zap_all_rmap_sptes(w.kvm, w.heads[0]);
          }).body(w);
          yield* writer("refill", (w) => mapSpte(w, 0)).body(w);
        })(),
    },
    ager,
  ],
};

/** The correct protocol, every schedule of each: no violation expected. */
export const CORRECT_SCENARIOS: Readonly<Record<string, RmapScenario>> = {
  emptyRace,
  addToSingle,
  appendInDesc,
  zapOneFreesHeadDesc,
  zapAll,
  dirtyVsAger,
  twoAgers,
  testAgeVsZap,
  zapThenRefill,
};
