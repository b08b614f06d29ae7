import { describe, expect, it } from "vitest";
import { encodeReplayToken } from "../trace/replay-token.js";
import { parseExplorerDoc } from "./doc.js";
import { ExploreError } from "./errors.js";
import { traceFromReplay } from "./replay-trace.js";

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

  it("never loads a file a replay string names: the user passes it, and its hash must match", async () => {
    const evil = encodeReplayToken({
      header: { s: "seed-003-put-root", k: "v5.18", v: "evil.mjs", vh: "0123456789abcdef" },
      choices: [],
    });
    await expect(traceFromReplay(evil)).rejects.toThrow(
      /recorded on the variant file 'evil\.mjs' \(sha256 0123456789abcdef\); a replay string never loads files by itself/,
    );
    // Another file than the one recorded is refused before it is loaded.
    await expect(traceFromReplay(evil, { variant: "package.json" })).rejects.toThrow(
      /is not the file this replay was recorded on/,
    );
    // An old-style header naming a path is no different.
    const path = encodeReplayToken({
      header: { s: "seed-003-put-root", k: "v5.18", v: "/tmp/evil.ts" },
      choices: [],
    });
    await expect(traceFromReplay(path)).rejects.toThrow(/pass it with --variant FILE/);
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
