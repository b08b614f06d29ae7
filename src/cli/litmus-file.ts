import { readFileSync } from "node:fs";
import { LitmusError, type LitmusTest, parseLitmus } from "../litmus/parse.js";
import { UsageError } from "./exit-codes.js";

/** Read and parse a litmus file; an unreadable or bad file is a UsageError naming FILE:LINE:COL. */
export function readLitmusFile(file: string): LitmusTest {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new UsageError(`litmus file '${file}' cannot be read`);
  }
  try {
    return parseLitmus(text);
  } catch (e) {
    if (e instanceof LitmusError) throw new UsageError(`${file}:${e.line}:${e.col}: ${e.message}`);
    throw e;
  }
}
