// Check Mermaid diagrams with the real Mermaid parser (no browser needed).
//
//   node tools/web/mermaid-parse.mjs FILE...
//
// Prints one JSON line per file, {"file", "ok", "diagramType"} or {"file", "ok": false, "error"},
// and exits 1 if any file fails to parse. Mermaid expects a DOM; jsdom provides one.
import { readFileSync } from "node:fs";
import { JSDOM } from "jsdom";

const { window } = new JSDOM("<!doctype html><html><body></body></html>");
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await import("mermaid");

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node mermaid-parse.mjs FILE...");
  process.exit(2);
}
let failed = 0;
for (const file of files) {
  try {
    const result = await mermaid.parse(readFileSync(file, "utf8"));
    console.log(JSON.stringify({ file, ok: true, diagramType: result.diagramType }));
  } catch (error) {
    failed += 1;
    console.log(JSON.stringify({ file, ok: false, error: String(error.message ?? error) }));
  }
}
process.exit(failed ? 1 : 0);
