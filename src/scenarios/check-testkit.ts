import type { Variant } from "../index.js";
import { type CheckOutcome, type CheckRequest, runCheck } from "./check.js";
import { type ResolvedScenario, runConfigFor } from "./resolve.js";

/** runCheck() of a resolved scenario and variant with what a test wants: no flags, no shrinking. */
export function checkResolved(
  scenario: ResolvedScenario,
  variant: Variant | null,
  explore: CheckRequest["explore"],
): CheckOutcome {
  return runCheck({
    scenario,
    variant,
    variantRef: null,
    config: runConfigFor(scenario, variant, {}),
    featureFlags: [],
    machineFlags: {},
    explore,
    shrink: false,
  });
}
