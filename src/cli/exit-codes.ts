/** Exit codes, documented in --help and in the README. */
export const EXIT = {
  ok: 0,
  violation: 1,
  usage: 2,
  inconclusive: 3,
  /** An exception in the user's own module (variant, scenario), or a misuse of the API there. */
  userError: 4,
  internal: 70,
  interrupted: 130,
} as const;

/** Bad input from the user (flags, files, replay strings): message, exit 2, no stack trace. */
export class UsageError extends Error {
  override name = "UsageError";
}
