import type { Command } from "@commander-js/extra-typings";
import { registerCheck } from "./commands/check.js";
import { registerExplore } from "./commands/explore.js";
import { registerList } from "./commands/list.js";
import { registerLitmus } from "./commands/litmus.js";
import { registerReplay } from "./commands/replay.js";
import { registerSeeds } from "./commands/seeds.js";
import { registerSimulate } from "./commands/simulate.js";
import { registerWorker } from "./commands/worker.js";
import type { Out } from "./io.js";

/** Sets the process exit code from inside an action. */
export type SetExit = (code: number) => void;

/** Every subcommand, each in its own file. */
export function registerCommands(program: Command, out: Out, setExit: SetExit): void {
  registerSeeds(program, out, setExit);
  registerCheck(program, out, setExit);
  registerReplay(program, out, setExit);
  registerList(program, out, setExit);
  registerSimulate(program, out, setExit);
  registerExplore(program, out, setExit);
  registerLitmus(program, out, setExit);
  registerWorker(program, out, setExit);
}
