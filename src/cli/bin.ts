#!/usr/bin/env node
import { EXIT } from "./exit-codes.js";
import { main } from "./main.js";

// `tdplab … | head`: the reader went away. Nothing more can be shown, and that is no error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`tdplab: internal error: ${String(e)}\n`);
    process.exitCode = EXIT.internal;
  },
);
