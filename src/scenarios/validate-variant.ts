import { FEATURE_NAMES } from "../mmu/features.js";
import { INVARIANT_NAMES } from "../mmu/invariants/catalog.js";
import { modelFnNames } from "../mmu/model-fns.js";
import type { Variant } from "./define.js";
import { suggest } from "./errors.js";

/**
 * What a variant names must exist: an override of a function the model does not have, a feature
 * that is not one, or a waived invariant that is never reported would otherwise be ignored, and the
 * run would check the unchanged design and call it safe. Returns one message per unknown name.
 */
export function variantProblems(v: Variant): string[] {
  const out: string[] = [];
  const unknown = (what: string, name: string, known: readonly string[], where: string) => {
    const hint = suggest(name, known);
    out.push(
      `variant '${v.name}': ${where} names ${what} '${name}', which does not exist${hint ? ` (did you mean '${hint}'?)` : ""}`,
    );
  };
  const fns = modelFnNames();
  for (const name of Object.keys(v.overrides ?? {})) {
    if (!fns.includes(name)) unknown("the model function", name, fns, "overrides");
    else if (typeof v.overrides![name] !== "function")
      out.push(`variant '${v.name}': overrides.${name} is not a function`);
  }
  for (const name of Object.keys(v.features ?? {})) {
    if (!(FEATURE_NAMES as readonly string[]).includes(name))
      unknown("the feature", name, FEATURE_NAMES, "features");
  }
  for (const name of v.waives ?? []) {
    if (!INVARIANT_NAMES.includes(name)) unknown("the invariant", name, INVARIANT_NAMES, "waives");
  }
  return out;
}
