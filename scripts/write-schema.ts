/**
 * Writes schema/scenario.schema.json from the zod scenario schema (src/scenarios/schema.ts), then
 * formats it with biome so `npm run lint` accepts it. Run with `npm run schema`;
 * src/scenarios/schema.test.ts fails if the committed file is stale.
 */
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { scenarioJsonSchemaText } from "../src/scenarios/schema.js";

const out = fileURLToPath(new URL("../schema/scenario.schema.json", import.meta.url));
const biome = fileURLToPath(new URL("../node_modules/.bin/biome", import.meta.url));
writeFileSync(out, scenarioJsonSchemaText());
const fmt = spawnSync(biome, ["format", "--write", out], { stdio: "inherit" });
if (fmt.status !== 0) {
  console.error(`biome format failed (status ${fmt.status}); ${out} is written but unformatted`);
  process.exit(1);
}
console.error(`wrote ${out}`);
