/** A plain aligned text table (also valid Markdown when `markdown` is set). */
export function formatTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  markdown = false,
): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) => {
    const padded = cells.map((c, i) => (c ?? "").padEnd(widths[i]));
    return markdown ? `| ${padded.join(" | ")} |` : padded.join("  ").trimEnd();
  };
  const sep = markdown
    ? `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`
    : widths.map((w) => "-".repeat(w)).join("  ");
  return [line(header), sep, ...rows.map(line)].join("\n");
}
