import type { Command } from "@commander-js/extra-typings";
import { FEATURE_NAMES } from "../../mmu/features.js";
import { PRESETS } from "../../mmu/presets.js";
import type { SetExit } from "../commands.js";
import type { Out } from "../io.js";
import { formatTable } from "../table.js";

/** `tdplab list`: kernel presets with their feature values, so a user can see what a version means. */
export function registerList(program: Command, out: Out, _setExit: SetExit): void {
  program
    .command("list")
    .description("list kernel presets and the features each one sets")
    .option("--json", "print JSON")
    .action((opts) => {
      if (opts.json) {
        out.data(JSON.stringify({ presets: PRESETS, features: FEATURE_NAMES }, null, 2));
        return;
      }
      const header = ["feature", ...PRESETS.map((p) => `${p.name} (${p.era})`)];
      const rows = FEATURE_NAMES.map((f) => [
        f,
        ...PRESETS.map((p) => {
          const v = p.features[f];
          return typeof v === "boolean" ? (v ? "on" : "-") : String(v);
        }),
      ]);
      out.data(formatTable(header, rows));
      out.data("");
      for (const p of PRESETS) out.data(`${p.name.padEnd(7)} ${p.era}  ${p.summary}`);
    });
}
