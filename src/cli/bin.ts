#!/usr/bin/env node
import { EXIT } from "./exit-codes.js";
import { main } from "./main.js";

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`tdplab: internal error: ${String(e)}\n`);
    process.exitCode = EXIT.internal;
  },
);
