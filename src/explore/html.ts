import { createHash } from "node:crypto";
import type { WebAsset } from "./assets.js";
import { ExploreError } from "./errors.js";

/**
 * JSON that is safe inside an HTML <script> element: `<`, `>` and `&` become \u escapes (so no
 * string in the trace can close the element or open a comment), and so do U+2028/U+2029. JSON.parse
 * reads the escapes back as the same characters.
 */
export function scriptSafeJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/>/g, "\\u003e")
    .replace(/&/g, "\\u0026")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** Script text that cannot end its <script> element early or enter the HTML parser's escaped states. */
function inlineScript(js: string): string {
  return js.replace(/<\/(script)/gi, "<\\/$1").replace(/<!--/g, "<\\!--");
}

const sha256 = (text: string) => `'sha256-${createHash("sha256").update(text, "utf8").digest("base64")}'`;

/**
 * One self-contained HTML file: the app's script and stylesheet inlined, the trace embedded as JSON
 * in a non-executable script element. It loads nothing from anywhere: a Content-Security-Policy
 * allows only these two inline blocks (by hash) and no connections, so a trace opened from a mail
 * attachment cannot fetch or send anything. Nothing from the trace is written into the HTML
 * outside the JSON block; the page sets its title itself.
 */
export function selfContainedHtml(doc: unknown, assets: ReadonlyMap<string, WebAsset>): string {
  const js = assets.get("/assets/explorer.js");
  const css = assets.get("/assets/explorer.css");
  if (js === undefined)
    throw new ExploreError("the explorer's web app is not built: run 'npm run build' first");
  const script = inlineScript(js.body.toString("utf8"));
  const style = (css?.body.toString("utf8") ?? "").replace(/<\/(style)/gi, "<\\/$1");
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(script)}`,
    `style-src ${sha256(style)}`,
    "img-src data:",
    "base-uri 'none'",
    "form-action 'none'",
  ].join("; ");
  return [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${csp}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<link rel="icon" href="data:,">',
    "<title>tdplab explorer</title>",
    `<style>${style}</style>`,
    "</head>",
    "<body>",
    '<div id="app"></div>',
    `<script type="application/json" id="tdplab-trace">${scriptSafeJson(doc)}</script>`,
    `<script type="module">${script}</script>`,
    "</body>",
    "</html>",
    "",
  ].join("\n");
}
