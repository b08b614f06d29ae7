/** Virtual time for axes and labels: the largest unit that keeps the number at least 1. */
export function formatNs(ns: number, digits = 3): string {
  const a = Math.abs(ns);
  const fmt = (v: number, u: string) => `${Number(v.toPrecision(digits))} ${u}`;
  if (a >= 1e9) return fmt(ns / 1e9, "s");
  if (a >= 1e6) return fmt(ns / 1e6, "ms");
  if (a >= 1e3) return fmt(ns / 1e3, "µs");
  return fmt(ns, "ns");
}

/** A stable colour for a kernel function name (hue from a string hash), so a function keeps its colour. */
export function fnHue(fn: string): number {
  let h = 2166136261;
  for (let i = 0; i < fn.length; i++) h = Math.imul(h ^ fn.charCodeAt(i), 16777619);
  return (h >>> 0) % 360;
}

/** The lock mode a lock-taking step name implies (read_lock → read, write_lock → write). */
export function lockModeOf(step: string): "read" | "write" | "exclusive" {
  if (/read/.test(step)) return "read";
  if (/write/.test(step)) return "write";
  return "exclusive";
}

/** Nice round tick positions covering [t0, t1] with about `count` ticks. */
export function ticks(t0: number, t1: number, count: number): number[] {
  const span = t1 - t0;
  if (!(span > 0) || count < 1) return [t0];
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(t0 / step) * step; t <= t1 + step * 1e-9; t += step) out.push(t);
  return out;
}

/** A violation's message without a repeated "<invariant>: " prefix. */
export function messageOf(v: { readonly invariant: string; readonly message: string }): string {
  return v.message.startsWith(`${v.invariant}: `) ? v.message.slice(v.invariant.length + 2) : v.message;
}
