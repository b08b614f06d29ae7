import { describe, expect, it } from "vitest";
import { encodeReplayToken } from "../trace/replay-token.js";
import { parseExplorerDoc } from "./doc.js";
import { ExploreError } from "./errors.js";
import { fileRefsOf, traceFromReplay } from "./replay-trace.js";

const header = { s: "seed-003-put-root", k: "v5.18", v: "put-root-dec-not-one-set-zero" };

describe("traceFromReplay", () => {
  it("reports a schedule that does not fit the model as the user's error", async () => {
    const e = await traceFromReplay(encodeReplayToken({ header, choices: [] })).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ExploreError);
    expect((e as Error).message).toMatch(/does not fit/);
  });

  it("refuses malformed replay strings and unknown references as the user's errors", async () => {
    await expect(traceFromReplay("nope")).rejects.toThrow(ExploreError);
    await expect(traceFromReplay("tdp1.!!.AA")).rejects.toThrow(/bad replay string/);
    const unknown = encodeReplayToken({ header: { s: "no-such-scenario", k: "v5.18" }, choices: [] });
    await expect(traceFromReplay(unknown)).rejects.toThrow(/unknown scenario/);
  });

  it("regenerates only built-in scenarios and variants, and the files it is told it may load", async () => {
    const evil = encodeReplayToken({
      header: { s: "seed-003-put-root", k: "v5.18", v: "/tmp/evil.ts" },
      choices: [],
    });
    await expect(traceFromReplay(evil, new Set())).rejects.toThrow(
      /'\/tmp\/evil\.ts', which is not built in/,
    );
    // The same file, allowed, gets as far as loading it.
    await expect(traceFromReplay(evil, new Set(["/tmp/evil.ts"]))).rejects.toThrow(/does not exist/);
    expect(fileRefsOf({ s: "seed-003-put-root", k: "v5.18", v: "put-root-recursive" })).toEqual([]);
    expect(fileRefsOf({ s: "my.yaml", k: "v5.18", v: "./v.ts" })).toEqual(["my.yaml", "./v.ts"]);
  });
});

describe("parseExplorerDoc", () => {
  it("tells the two document kinds apart and names the first bad field", () => {
    expect(() => parseExplorerDoc({ schemaVersion: 1 })).toThrow(/not a tdplab trace \(schema v1\): tool/);
    expect(() => parseExplorerDoc({ kind: "sim", schemaVersion: 2 })).toThrow(
      /simulator trace.*schemaVersion/,
    );
    expect(() => parseExplorerDoc(null)).toThrow(/\(document\)/);
  });
});
