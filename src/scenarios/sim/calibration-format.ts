import type { CalibrationRow, Published } from "./calibration.js";

/** A duration for people: 929.7 s, 12.6 ms, 71.4 µs, 76 ns. */
export function duration(ns: number): string {
  const a = Math.abs(ns);
  const p = (v: number) => String(Number(v.toPrecision(4)));
  if (a >= 1e9) return `${p(ns / 1e9)} s`;
  if (a >= 1e6) return `${p(ns / 1e6)} ms`;
  if (a >= 1e3) return `${p(ns / 1e3)} µs`;
  return `${p(ns)} ns`;
}

export function publishedText(p: Published | null): string {
  if (p === null) return "-";
  switch (p.kind) {
    case "point":
      return `≈ ${duration(p.ns)}`;
    case "at-least":
      return `≥ ${duration(p.ns)}`;
    case "at-most":
      return `≤ ${duration(p.ns)}`;
    case "range":
      return `${duration(p.lo)} – ${duration(p.hi)}`;
  }
}

/** A ratio with three significant digits ("1.04", "0.333", "7.6e-7"). */
export function ratioText(r: number | null): string {
  if (r === null) return "-";
  if (r !== 0 && Math.abs(r) < 1e-3) return r.toExponential(1).replace(/\.0e/, "e");
  return String(Number(r.toPrecision(3)));
}

/** The calibration table in Markdown, then a line counting the validation figures that agree. */
export function calibrationMarkdown(rows: readonly CalibrationRow[]): string {
  const lines = [
    "| id | figure | published | simulator | ratio | agrees | role | how the simulator's value is obtained |",
    "|---|---|---|---|---|---|---|---|",
  ];
  for (const r of rows) {
    const role = r.role === "calibration" ? `calibration (fitted: ${r.fittedPrices.join(", ")})` : r.role;
    const agrees = r.agrees === null ? "-" : r.agrees ? "yes" : "**no**";
    const sim = r.simulatedNs === null ? "-" : duration(r.simulatedNs);
    lines.push(
      `| ${r.id} | ${r.part} | ${publishedText(r.published)} | ${sim} | ${ratioText(r.ratio)} | ${agrees} | ${role} | ${r.how} |`,
    );
  }
  const v = rows.filter((r) => r.role === "validation" && r.agrees !== null);
  const c = rows.filter((r) => r.role === "calibration" && r.agrees !== null);
  lines.push(
    "",
    `Validation figures (no price fitted to them): ${v.filter((r) => r.agrees).length} of ${v.length} agree. ` +
      `Calibration figures still reproduced: ${c.filter((r) => r.agrees).length} of ${c.length}. ` +
      "A point figure agrees within 2×; a bound or a range when the value is on its side or inside.",
  );
  return lines.join("\n");
}

/**
 * Per timed scenario: the figures of the table its runs compute (a row whose "how" starts with the
 * scenario's name), each with its ratio and role, or a plain "none" for a scenario no published
 * figure checks yet. A figure is listed under one role only, the table's.
 */
export function scenarioFiguresMarkdown(
  rows: readonly CalibrationRow[],
  scenarios: readonly string[],
): string {
  const lines = ["| scenario | figures it reproduces (ratio, role) |", "|---|---|"];
  for (const name of scenarios) {
    const mine = rows.filter((r) => r.how.startsWith(`${name} `) || r.how.startsWith(`${name}:`));
    const text =
      mine.length === 0
        ? "none: no published figure is computed by it yet"
        : mine.map((r) => `${r.id} ${r.part} (${ratioText(r.ratio)}, ${r.role})`).join("; ");
    lines.push(`| ${name} | ${text} |`);
  }
  return lines.join("\n");
}
