/**
 * The status line of a sweep: `[########............] 7/17  12.4 s  guestSize=4TiB`. Pure text; the
 * caller shows it on stderr (Out.progress), so stdout stays data only.
 */
export function progressBar(
  done: number,
  total: number,
  elapsedMs: number,
  current: string,
  width = 20,
): string {
  const frac = total > 0 ? Math.min(1, done / total) : 1;
  const full = Math.round(frac * width);
  const bar = `[${"#".repeat(full)}${".".repeat(width - full)}]`;
  const secs = elapsedMs < 10_000 ? (elapsedMs / 1000).toFixed(1) : Math.round(elapsedMs / 1000).toString();
  return `${bar} ${done}/${total}  ${secs} s${current === "" ? "" : `  ${current}`}`;
}
