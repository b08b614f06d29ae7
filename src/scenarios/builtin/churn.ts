import { churnProgram } from "../../mmu/workloads.js";
import type { Scenario } from "../define.js";

export const churn: Scenario = {
  name: "churn",
  description:
    "Two vCPUs faulting in two memslots, memslot 1 deleted, an mmu_notifier invalidation, clear_young, " +
    "dirty logging on slot 0, and VM destruction, all at once.",
  exercises: "every task kind together; too large for exhaustive search: use --strategy random or pct",
  defaultKernel: "v6.9",
  machine: { needResched: "choice", needReschedBudget: 2 },
  build: (cfg) => churnProgram(cfg.features, { machine: cfg.machine }),
};
