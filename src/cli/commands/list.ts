import type { Command } from "@commander-js/extra-typings";
import { FEATURE_NAMES } from "../../mmu/features.js";
import { INVARIANTS } from "../../mmu/invariants/catalog.js";
import { modelFnNames } from "../../mmu/model-fns.js";
import { PRESETS } from "../../mmu/presets.js";
import { BUILTIN_SCENARIOS } from "../../scenarios/builtin/index.js";
import { BUILTIN_VARIANTS } from "../../scenarios/variants/index.js";
import type { SetExit } from "../commands.js";
import { UsageError } from "../exit-codes.js";
import type { Out } from "../io.js";
import { formatTable } from "../table.js";

const SECTIONS = ["presets", "scenarios", "variants", "invariants", "functions"] as const;
type Section = (typeof SECTIONS)[number];

function data(section: Section): unknown {
  switch (section) {
    case "presets":
      return { presets: PRESETS, features: FEATURE_NAMES };
    case "scenarios":
      return BUILTIN_SCENARIOS.map((s) => ({
        name: s.name,
        kernel: s.defaultKernel ?? null,
        description: s.description,
        decides: s.exercises ?? null,
        params: s.params ?? {},
      }));
    case "variants":
      return BUILTIN_VARIANTS.map((v) => ({
        name: v.name,
        thread: v.thread ?? null,
        description: v.description,
        overrides: Object.keys(v.overrides ?? {}),
        features: v.features ?? {},
        waives: v.waives ?? [],
      }));
    case "invariants":
      return INVARIANTS;
    case "functions":
      return modelFnNames();
  }
}

function text(section: Section): string {
  switch (section) {
    case "presets": {
      const header = ["feature", ...PRESETS.map((p) => `${p.name} (${p.era})`)];
      const rows = FEATURE_NAMES.map((f) => [
        f,
        ...PRESETS.map((p) => {
          const v = p.features[f];
          return typeof v === "boolean" ? (v ? "on" : "-") : String(v);
        }),
      ]);
      return [
        formatTable(header, rows),
        "",
        ...PRESETS.map((p) => `${p.name.padEnd(7)} ${p.era}  ${p.summary}`),
      ].join("\n");
    }
    case "scenarios":
      return BUILTIN_SCENARIOS.map((s) => {
        const params = Object.entries(s.params ?? {})
          .map(([k, p]) => `${k}=${p.default} (${p.min}-${p.max})`)
          .join(", ");
        return `${s.name} [${s.defaultKernel ?? "v6.15"}]\n  ${s.description}${params ? `\n  --set ${params}` : ""}`;
      }).join("\n");
    case "variants":
      return BUILTIN_VARIANTS.map(
        (v) => `${v.name}${v.thread ? ` (seed ${v.thread})` : ""}\n  ${v.description}`,
      ).join("\n");
    case "invariants":
      return formatTable(
        ["invariant", "area", "meaning"],
        INVARIANTS.map((i) => [i.name, i.area, i.meaning]),
      );
    case "functions":
      return modelFnNames().join("\n");
  }
}

/**
 * `tdplab list [section]`: kernel presets and their features, built-in scenarios (kernel, what
 * they decide, parameters), built-in variants (seed thread, design), the invariants checked and
 * the model functions a variant may override.
 */
export function registerList(program: Command, out: Out, _setExit: SetExit): void {
  program
    .command("list")
    .argument("[section]", `one of ${SECTIONS.join(", ")} (default: all)`)
    .description("list kernel presets, scenarios, variants, invariants and overridable model functions")
    .option("--json", "print JSON")
    .action((section, opts) => {
      if (section !== undefined && !(SECTIONS as readonly string[]).includes(section)) {
        throw new UsageError(`list: unknown section '${section}'; sections: ${SECTIONS.join(", ")}`);
      }
      const which: readonly Section[] = section === undefined ? SECTIONS : [section as Section];
      if (opts.json) {
        const doc = Object.fromEntries(which.map((s) => [s, data(s)]));
        out.data(JSON.stringify(section === undefined ? doc : doc[section], null, 2));
        return;
      }
      out.data(which.map((s) => (which.length > 1 ? `== ${s}\n${text(s)}` : text(s))).join("\n\n"));
    });
}
