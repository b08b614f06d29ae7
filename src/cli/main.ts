import { Command, CommanderError } from "@commander-js/extra-typings";
import { QueueError } from "../engine/explore/queue/redis.js";
import { MODEL_VERSION, TOOL_VERSION } from "../version.js";
import { registerCommands } from "./commands.js";
import { EXIT, UsageError } from "./exit-codes.js";
import { type Out, processOut } from "./io.js";

const EXAMPLES = `
Examples:
  tdplab seeds                                   every design the seed threads debate, checked
  tdplab check seed-003-put-root --kernel v5.18  explore every interleaving of a built-in scenario
  tdplab check my-scenario.yaml --variant ./my-patch.ts
  tdplab replay 'tdp1.eyJz….AgEB'                reproduce a counterexample step by step
  tdplab list                                    presets, features, scenarios and variants

Exit codes:
  0 no violation   1 violation   2 usage or input error
  3 inconclusive (with --fail-on-incomplete; replay: a run cut by the depth bound)
  4 error in your module (variant, scenario): an exception, or a loop that never reaches a primitive
  70 internal error   130 interrupted`;

export async function main(argv: readonly string[], out: Out = processOut()): Promise<number> {
  const program = new Command()
    .name("tdplab")
    .description(
      "A laboratory for the Linux KVM x86 TDP MMU: model checker and simulator of its root lifecycle.",
    )
    .version(`tdplab ${TOOL_VERSION} (model ${MODEL_VERSION})`, "-V, --version")
    .showHelpAfterError()
    .addHelpText("after", EXAMPLES)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => out.data(s.replace(/\n$/, "")),
      writeErr: (s) => out.info(s.replace(/\n$/, "")),
    });
  let code: number = EXIT.ok;
  registerCommands(program, out, (c) => {
    code = c;
  });
  try {
    await program.parseAsync(argv as string[], { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.exitCode === 0)
        return EXIT.ok;
      return EXIT.usage;
    }
    // A queue that cannot be used is the user's set-up to fix (its message is already redacted).
    if (e instanceof UsageError || e instanceof QueueError) {
      out.info(`tdplab: ${e.message}`);
      return EXIT.usage;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    out.info(
      `tdplab: internal error: ${err.message}\n${err.stack ?? ""}\nThis is a bug in tdplab; please report it with the command line above.`,
    );
    return EXIT.internal;
  }
}
