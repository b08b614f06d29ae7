/**
 * The explorer's view in the URL, so that a link reproduces it: the replay string in the query
 * (`?replay=tdp1.…`, which a served explorer regenerates the trace from) and the view in the hash
 * (`#cursor=12&task=2`, plus `run=1` for simulator documents).
 */
export interface ViewState {
  /** Step index (checker) or span index (simulator) under the cursor. */
  readonly cursor: number | null;
  /** Selected task id, for `n` (next step of the selected task). */
  readonly task: number | null;
  /** Selected simulator run. */
  readonly run: number | null;
}

function intOrNull(s: string | null): number | null {
  if (s === null || !/^\d{1,9}$/.test(s)) return null;
  return Number(s);
}

export function parseHash(hash: string): ViewState {
  const p = new URLSearchParams(hash.replace(/^#/, ""));
  return { cursor: intOrNull(p.get("cursor")), task: intOrNull(p.get("task")), run: intOrNull(p.get("run")) };
}

export function formatHash(v: ViewState): string {
  const parts: string[] = [];
  if (v.run !== null) parts.push(`run=${v.run}`);
  if (v.cursor !== null) parts.push(`cursor=${v.cursor}`);
  if (v.task !== null) parts.push(`task=${v.task}`);
  return parts.length ? `#${parts.join("&")}` : "";
}

/** The replay string a link carries, if any. */
export function replayParam(search: string): string | null {
  const r = new URLSearchParams(search).get("replay");
  return r === null || r === "" ? null : r;
}

/** `search` with the replay string set (other parameters kept). */
export function withReplay(search: string, replay: string): string {
  const p = new URLSearchParams(search);
  p.set("replay", replay);
  return `?${p.toString()}`;
}
