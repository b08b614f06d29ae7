import { addToSingle, emptyRace, zapAll } from "../../mmu/rmap_scenarios.js";
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
