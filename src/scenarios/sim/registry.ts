import { defunctRootZapScenario } from "./defunct-root-zap.js";
import { dirtyLog } from "./dirty-log.js";
import { fastZapRootLoadScenario } from "./fast-zap-root-load.js";
import { locklessAging } from "./lockless-aging.js";
import { memslotChurnScenario } from "./memslot-churn.js";
import { mmuStress } from "./mmu-stress.js";
import { nxRecoveryScenario } from "./nx-recovery.js";
import { rootChurnScenario } from "./root-churn.js";
import { rootWalk } from "./root-walk.js";
import { teardownWaitScenario } from "./teardown-wait.js";
import type { SimScenario } from "./types.js";
import { unboundZapWorkerScenario } from "./unbound-zap-worker.js";

/**
 * Every timed scenario `tdplab simulate`, the report and the benchmark know, in the order they are
 * listed. A scenario is a module src/scenarios/sim/<name>.ts exporting a SimScenario; registry.test.ts
 * fails when such a module is not listed here.
 */
export const SIM_SCENARIOS: readonly SimScenario[] = [
  defunctRootZapScenario,
  teardownWaitScenario,
  rootWalk,
  locklessAging,
  dirtyLog,
  mmuStress,
  unboundZapWorkerScenario,
  fastZapRootLoadScenario,
  rootChurnScenario,
  nxRecoveryScenario,
  memslotChurnScenario,
];

/** The scenario called `name` in `list`, or undefined. */
export function findSimScenario(
  name: string,
  list: readonly SimScenario[] = SIM_SCENARIOS,
): SimScenario | undefined {
  return list.find((s) => s.name === name);
}
