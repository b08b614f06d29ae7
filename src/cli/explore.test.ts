import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { traceFromReplay } from "../explore/replay-trace.js";
import { TraceDoc } from "../trace/schema.js";
import { memoryOut } from "./io.js";
import { main } from "./main.js";

async function run(...argv: string[]) {
  const out = memoryOut();
  const code = await main(argv, out);
  return { code, stdout: out.stdout.join("\n"), stderr: out.stderr.join("\n") };
}

const dir = mkdtempSync(join(tmpdir(), "tdplab-explore-"));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe("tdplab explore: bad input is exit 2 with the file and field, no stack", () => {
  it.each([
    [["explore", join(dir, "missing.json")], /cannot read '.*missing\.json': ENOENT/],
    [["explore", file("bad.json", "{")], /bad\.json: not JSON/],
    [
      ["explore", file("v2.json", '{"schemaVersion":2}')],
      /v2\.json: not a tdplab trace \(schema v1\): schemaVersion/,
    ],
    [
      [
        "explore",
        file(
          "sim.json",
          '{"kind":"sim","schemaVersion":1,"tool":{"name":"tdplab","version":"0"},"scenario":"s","runs":[{}]}',
        ),
      ],
      /sim\.json: not a simulator trace \(schema v1\): runs\.0\.label/,
    ],
    [["explore", "tdp1.%%%.AA"], /bad replay string/],
    [["explore", file("ok.json", "{}"), "--port", "http"], /--port takes an integer/],
    [["explore", file("ok2.json", "{}"), "--port", "70000"], /--port takes 0\.\.65535/],
  ])("%s", async (argv, message) => {
    const r = await run(...(argv as string[]));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message as RegExp);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe("the explorer's replay path", () => {
  it("re-runs the checker's counterexample into the same trace, with the state after every step", async () => {
    const out = memoryOut();
    const code = await main(
      [
        "check",
        "seed-003-put-root",
        "--kernel",
        "v5.18",
        "--variant",
        "put-root-dec-not-one-set-zero",
        "--json",
      ],
      out,
    );
    expect(code).toBe(1);
    const checked = JSON.parse(out.stdout.join("\n")).violation.trace as TraceDoc;
    const doc = await traceFromReplay(checked.replay);
    expect(TraceDoc.safeParse(doc).success).toBe(true);
    expect(doc.steps).toEqual(checked.steps);
    expect(doc.violation?.invariant).toBe(checked.violation?.invariant);
    expect(doc.states?.length).toBe(doc.steps.length);
    expect(doc.replay).toBe(checked.replay);
  });
});
