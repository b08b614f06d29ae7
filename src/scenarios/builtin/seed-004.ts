import { addToSingle, agingScenario, emptyRace, zapAll } from "../../mmu/rmap_scenarios.js";
import { type RmapScenario, rmapProgram } from "../../mmu/rmap_testkit.js";
import type { RunConfig, Scenario } from "../define.js";

function rmapScenario(name: string, description: string, s: RmapScenario): Scenario {
  return {
    name,
    description,
    exercises:
      "seed 004: KVM_RMAP_LOCKED, kvm_rmap_lock_readonly()/kvm_rmap_unlock_readonly() in the lockless " +
      "ager against a writer under the write mmu_lock. Checks inv 19 and use-after-free on descs.",
    defaultKernel: "v6.15",
    build: (cfg: RunConfig) =>
      rmapProgram({
        ...s,
        kernel: cfg.kernel,
        features: cfg.features,
        machine: { ...s.machine, ...cfg.machine },
      }),
  };
}

/** Writers growing one rmap against lockless agers, sized by parameters. */
export const rmapAging: Scenario = {
  name: "rmap-aging",
  description:
    "Writers under the write mmu_lock each map one more SPTE into an rmap (empty, one entry, then a desc chain) " +
    "while lockless agers (clear_young and test_young, alternately) walk it. Sizes are parameters (--set).",
  exercises:
    "seed 004 at scale: the KVM_RMAP_LOCKED bit between many writers and many agers; inv 19 and " +
    "use-after-free on descs.",
  defaultKernel: "v6.15",
  params: {
    writers: {
      default: 2,
      min: 1,
      max: 3,
      description: "writers, each mapping one SPTE under the write mmu_lock",
    },
    agers: { default: 2, min: 1, max: 3, description: "lockless agers (clear_young, test_young, ...)" },
  },
  build: (cfg: RunConfig) =>
    rmapProgram({
      ...agingScenario(cfg.params.writers ?? 2, cfg.params.agers ?? 2),
      kernel: cfg.kernel,
      features: cfg.features,
      machine: cfg.machine,
    }),
};

export const seed004EmptyRace = rmapScenario(
  "seed-004-empty-rmap",
  "A lockless ager finds an rmap empty while a writer adds its first entry (James's question).",
  emptyRace,
);
export const seed004AddToSingle = rmapScenario(
  "seed-004-add-to-single",
  "A writer turns a one-entry rmap into a desc chain while the lockless ager walks it.",
  addToSingle,
);
export const seed004ZapAll = rmapScenario(
  "seed-004-zap-all",
  "A writer zaps every SPTE of an rmap (freeing its descs) while the lockless ager walks it.",
  zapAll,
);
