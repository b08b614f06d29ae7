import { styleText } from "node:util";

/**
 * Output policy (clig.dev): stdout carries data only; progress, hints and
 * diagnostics go to stderr. Colour is decided per stream: off with NO_COLOR
 * (non-empty), TERM=dumb or a non-TTY; FORCE_COLOR turns it on.
 */
export interface Out {
  data(text: string): void;
  info(text: string): void;
  color(stream: "stdout" | "stderr"): boolean;
  style(stream: "stdout" | "stderr", fmt: Parameters<typeof styleText>[0], text: string): string;
  /** A status line on stderr (TTY only), throttled to 10 Hz unless `force` (e.g. a long step starts now). */
  progress(text: string, force?: boolean): void;
  endProgress(): void;
  readonly stderrIsTTY: boolean;
}

function colorOn(tty: boolean): boolean {
  const env = process.env;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0") return true;
  if (env.TERM === "dumb") return false;
  return tty;
}

export function processOut(): Out {
  const errTTY = process.stderr.isTTY === true;
  const outTTY = process.stdout.isTTY === true;
  let lastProgress = 0;
  let progressShown = false;
  const showProgress = errTTY && !process.env.CI;
  return {
    stderrIsTTY: errTTY,
    data: (t) => process.stdout.write(t.endsWith("\n") ? t : `${t}\n`),
    info: (t) => process.stderr.write(t.endsWith("\n") ? t : `${t}\n`),
    color: (s) => colorOn(s === "stdout" ? outTTY : errTTY),
    style(stream, fmt, text) {
      return colorOn(stream === "stdout" ? outTTY : errTTY)
        ? styleText(fmt, text, { validateStream: false })
        : text;
    },
    progress(text, force = false) {
      if (!showProgress) return;
      const now = performance.now();
      if (!force && now - lastProgress < 100) return;
      lastProgress = now;
      progressShown = true;
      process.stderr.write(`\r\x1b[2K${text}`);
    },
    endProgress() {
      if (progressShown) process.stderr.write("\r\x1b[2K");
      progressShown = false;
    },
  };
}

/** An Out that collects into strings (tests). */
export function memoryOut(): Out & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    stderrIsTTY: false,
    data: (t) => stdout.push(t),
    info: (t) => stderr.push(t),
    color: () => false,
    style: (_s, _f, t) => t,
    progress: () => {},
    endProgress: () => {},
  };
}
