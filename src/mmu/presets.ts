import type { FeatureName, Features } from "./features.js";
import { FEATURE_NAMES } from "./features.js";

export interface Preset {
  readonly name: string;
  readonly era: string;
  readonly summary: string;
  readonly features: Features;
}

const v5_17: Features = {
  getRootIgnoresInvalid: true,
  volatileSpteXchg: false,
  memslotMaxGfnCheck: false,
  faultChecksInvalidRoot: true,
  unmapZapsInvalidRoots: true,
  asyncZapWorker: false,
  defunctRoots: false,
  persistentRoots: false,
  scheduledRootToZap: false,
  rootAllocUnderReadLock: false,
  rootFreeUnderReadLock: false,
  zapPasses: "single",
  leafZapSkipsInvalid: false,
  agingSkipsInvalidRoots: false,
  rootTypes: false,
  locklessAging: false,
  teardownInvalidateUnderRcu: false,
  eagerPageSplit: false,
  hugePageRecoveryInPlace: false,
  nxRecoveryUnderReadLock: false,
};
const v5_18: Features = {
  ...v5_17,
  volatileSpteXchg: true,
  memslotMaxGfnCheck: true,
  eagerPageSplit: true,
  asyncZapWorker: true,
  defunctRoots: true,
  zapPasses: "two-pass",
};
const v6_4: Features = {
  ...v5_18,
  defunctRoots: false,
  persistentRoots: true,
  teardownInvalidateUnderRcu: true,
};
const v6_6: Features = {
  ...v6_4,
  asyncZapWorker: false,
  scheduledRootToZap: true,
  teardownInvalidateUnderRcu: false,
};
const v6_9: Features = {
  ...v6_6,
  rootAllocUnderReadLock: true,
  rootFreeUnderReadLock: true,
  zapPasses: "four-pass",
  leafZapSkipsInvalid: true,
};
const v6_15: Features = {
  ...v6_9,
  agingSkipsInvalidRoots: true,
  rootTypes: true,
  locklessAging: true,
  hugePageRecoveryInPlace: true,
};

export const PRESETS: readonly Preset[] = [
  {
    name: "v5.17",
    era: "E2",
    summary: "fast invalidation, gifted references, synchronous zap on last put",
    features: v5_17,
  },
  {
    name: "v5.18",
    era: "E3",
    summary: "async zap worker, defunct roots, two-pass zap (seeds 001-003)",
    features: v5_18,
  },
  {
    name: "v6.4",
    era: "E4",
    summary: "persistent roots; teardown invalidates under RCU (seed 000)",
    features: v6_4,
  },
  {
    name: "v6.6",
    era: "E5",
    summary: "worker removed; scheduled_root_to_zap; synchronous zap under read lock",
    features: v6_6,
  },
  {
    name: "v6.9",
    era: "E6",
    summary: "roots allocated and freed under the read lock; 4K->2M->1G->root zap",
    features: v6_9,
  },
  {
    name: "v6.15",
    era: "E7",
    summary: "root types; lockless aging with KVM_RMAP_LOCKED (seed 004)",
    features: v6_15,
  },
];

export class FeatureError extends Error {
  override name = "FeatureError";
}

export function presetByName(name: string): Preset {
  const n = name.startsWith("v") ? name : `v${name}`;
  const p = PRESETS.find((x) => x.name === n);
  if (!p) throw new FeatureError(`unknown kernel '${name}'; known: ${PRESETS.map((x) => x.name).join(", ")}`);
  return p;
}

/** Parse `NAME=on|off` (or `zapPasses=single|two-pass|four-pass`) into a partial override. */
export function parseFeatureOverride(text: string): Partial<Record<FeatureName, boolean | string>> {
  const eq = text.indexOf("=");
  if (eq <= 0) throw new FeatureError(`feature override '${text}' must look like NAME=on|off`);
  const name = text.slice(0, eq) as FeatureName;
  const value = text.slice(eq + 1);
  if (!FEATURE_NAMES.includes(name)) {
    throw new FeatureError(`unknown feature '${name}'; known: ${FEATURE_NAMES.join(", ")}`);
  }
  if (name === "zapPasses") {
    if (value !== "single" && value !== "two-pass" && value !== "four-pass") {
      throw new FeatureError(`feature zapPasses takes single|two-pass|four-pass, not '${value}'`);
    }
    return { zapPasses: value };
  }
  if (value !== "on" && value !== "off" && value !== "true" && value !== "false") {
    throw new FeatureError(`feature ${name} takes on|off, not '${value}'`);
  }
  return { [name]: value === "on" || value === "true" };
}

/** A preset with overrides applied. */
export function resolveFeatures(kernel: string, overrides: readonly string[] = []): Features {
  let f: Features = presetByName(kernel).features;
  for (const o of overrides) f = { ...f, ...parseFeatureOverride(o) } as Features;
  return f;
}
