import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { describeValue, errorOrigin, isGenerator } from "./user-frame.js";
import { UserCodeError } from "./violation.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function errorWith(...files: string[]): Error {
  const e = new TypeError("x");
  e.stack = ["TypeError: x", ...files.map((f, i) => `    at fn${i} (${f})`)].join("\n");
  return e;
}

describe("whose error an exception is", () => {
  it("thrown in a file outside tdplab's sources: the user's, located there", () => {
    const o = errorOrigin(
      errorWith("file:///home/me/patch.mjs:12:5", `file://${ROOT}src/engine/model-fn.ts:30:1`),
    );
    expect(o).toEqual({ user: true, where: "/home/me/patch.mjs:12:5" });
  });

  it("thrown in tdplab's code: tdplab's, even when the user's code is further out", () => {
    const o = errorOrigin(errorWith(`${ROOT}dist/mmu/vcpu.js:126:16`, "/home/me/patch.mjs:3:1"));
    expect(o).toEqual({ user: false, where: "/home/me/patch.mjs:3:1" });
  });

  it("examples and scenario files in the checkout are the user's; dependencies are not", () => {
    expect(errorOrigin(errorWith(`${ROOT}examples/lookup-vs-free.mjs:9:9`)).user).toBe(true);
    expect(errorOrigin(errorWith(`${ROOT}node_modules/yaml/dist/index.js:1:1`)).user).toBe(false);
  });

  it("a UserCodeError is the user's wherever it was raised", () => {
    const e = new UserCodeError("spawn: not a generator");
    expect(errorOrigin(e).user).toBe(true);
  });

  it("names what a non-generator is", () => {
    expect(describeValue(1)).toBe("number 1");
    expect(describeValue(function named() {})).toBe("a function (named)");
    expect(isGenerator((function* () {})())).toBe(true);
    expect(isGenerator(() => 1)).toBe(false);
  });
});
