import type { Command } from "@commander-js/extra-typings";
import { registerList } from "./commands/list.js";
import type { Out } from "./io.js";

/** Sets the process exit code from inside an action. */
export type SetExit = (code: number) => void;

/** Every subcommand, each in its own file. */
export function registerCommands(program: Command, out: Out, setExit: SetExit): void {
  registerList(program, out, setExit);
}
