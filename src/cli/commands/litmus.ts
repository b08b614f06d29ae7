import type { Command } from "@commander-js/extra-typings";
import {
  formatLitmus,
  type LitmusResult,
  MEMORY_MODELS,
  type MemoryModel,
  runLitmus,
} from "../../litmus/run.js";
import type { SetExit } from "../commands.js";
import { EXIT, UsageError } from "../exit-codes.js";
import type { Out } from "../io.js";
import { readLitmusFile } from "../litmus-file.js";
import { intFlag } from "../options.js";

/** `tdplab litmus`: every execution of C litmus tests under a memory model, herd7-style output. */
export function registerLitmus(program: Command, out: Out, setExit: SetExit): void {
  program
    .command("litmus")
    .description("run C litmus tests (the format of the kernel's tools/memory-model) under a memory model")
    .argument("<file...>", "litmus files (.litmus)")
    .option("--model <m>", `memory model: ${MEMORY_MODELS.join(" | ")}`, "sc")
    .option("--max-executions <n>", "stop after n executions per test (the result then says INCOMPLETE)")
    .option("--json", "print one JSON document on stdout")
    .action((files, o) => {
      const model = o.model as MemoryModel;
      if (!MEMORY_MODELS.includes(model))
        throw new UsageError(`--model takes ${MEMORY_MODELS.join("|")}, not '${o.model}'`);
      const maxExecutions = intFlag("--max-executions", o.maxExecutions, 1);
      const results: (LitmusResult & { file: string })[] = [];
      for (const file of files) {
        const test = readLitmusFile(file);
        const run = runLitmus(test, model, { maxExecutions });
        // herd7's word for the observation is the result: Never, Sometimes or Always.
        const r = { file, result: run.observation, ...run };
        results.push(r);
        if (!o.json) out.data(`${formatLitmus(r, file)}\n`);
      }
      if (o.json)
        out.data(
          JSON.stringify(
            results.length === 1 ? { schemaVersion: 1, ...results[0] } : { schemaVersion: 1, results },
            null,
            2,
          ),
        );
      setExit(EXIT.ok);
    });
}
