import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { WebAsset } from "./assets.js";
import { scriptSafeJson, selfContainedHtml } from "./html.js";

const XSS = "<img src=x onerror=alert(1)></script><script>alert(2)</script><!--";

const assets = new Map<string, WebAsset>([
  ["/index.html", { body: Buffer.from(""), type: "text/html" }],
  [
    "/assets/explorer.js",
    { body: Buffer.from('const s="</script><!--x";document.title=s;'), type: "text/javascript" },
  ],
  ["/assets/explorer.css", { body: Buffer.from("body{color:red}"), type: "text/css" }],
]);

const hash = (s: string) => `sha256-${createHash("sha256").update(s, "utf8").digest("base64")}`;

describe("the self-contained HTML file", () => {
  it("embeds JSON that no string can break out of, and that parses back unchanged", () => {
    const v = { scenario: XSS, nl: "a\u2028b\u2029c", amp: "&lt;" };
    const text = scriptSafeJson(v);
    expect(text).not.toMatch(/[<>&\u2028\u2029]/);
    expect(JSON.parse(text)).toEqual(v);
  });

  it("holds exactly the app script and the trace, and nothing from the trace outside the JSON", () => {
    const html = selfContainedHtml({ run: { scenario: XSS }, tasks: [{ name: XSS }] }, assets);
    expect(html.match(/<script\b/g)).toHaveLength(2);
    expect(html.match(/<\/script>/g)).toHaveLength(2);
    expect(html).not.toContain("<img");
    expect(html).not.toContain("alert(2)</script>");
    const json = html.match(/<script type="application\/json" id="tdplab-trace">(.*?)<\/script>/s)![1];
    expect(JSON.parse(json)).toEqual({ run: { scenario: XSS }, tasks: [{ name: XSS }] });
    // The app's own "</script" and "<!--" are escaped so that its element ends where it should.
    const js = html.match(/<script type="module">(.*?)<\/script>/s)![1];
    expect(js).toBe('const s="<\\/script><\\!--x";document.title=s;');
  });

  it("allows only its own inline script and style, by hash, and no connections", () => {
    const html = selfContainedHtml({}, assets);
    const csp = html.match(/<meta http-equiv="Content-Security-Policy" content="([^"]*)">/)![1];
    const js = html.match(/<script type="module">(.*?)<\/script>/s)![1];
    const css = html.match(/<style>(.*?)<\/style>/s)![1];
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain(`script-src '${hash(js)}'`);
    expect(csp).toContain(`style-src '${hash(css)}'`);
    expect(csp).not.toMatch(/unsafe-inline|connect-src/);
  });

  it("refuses to write a file without the built app", () => {
    expect(() => selfContainedHtml({}, new Map())).toThrow(/npm run build/);
  });
});
