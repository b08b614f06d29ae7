import type { Features } from "../../mmu/features.js";
import { FeatureError, parseFeatureOverride } from "../../mmu/presets.js";
import { SimParamError } from "./params.js";

/** Feature values set on top of every simulated run's kernel preset. */
export type SimFeatures = Partial<Features>;

/**
 * What `simulate --variant` and `--feature` change in every run: the variant's features, then each
 * flag (NAME=on|off, zapPasses=single|two-pass|four-pass) in order. Null when nothing is changed, so
 * the runs are the presets as they are. A bad flag is a SimParamError naming it.
 */
export function simFeatures(variant: SimFeatures | undefined, flags: readonly string[]): SimFeatures | null {
  let f: SimFeatures = { ...(variant ?? {}) };
  for (const flag of flags) {
    try {
      f = { ...f, ...parseFeatureOverride(flag) } as SimFeatures;
    } catch (e) {
      if (e instanceof FeatureError) throw new SimParamError(`--feature ${flag}: ${e.message}`);
      throw e;
    }
  }
  return Object.keys(f).length === 0 ? null : f;
}

/** "zapPasses=single locklessAging=off", for the header of a table. */
export function featureText(f: SimFeatures): string {
  return Object.entries(f)
    .map(([k, v]) => `${k}=${v === true ? "on" : v === false ? "off" : v}`)
    .join(" ");
}
