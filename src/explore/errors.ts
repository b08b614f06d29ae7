/** Bad input to the explorer (a trace file, a replay string, a port): the message says which and why. */
export class ExploreError extends Error {
  override name = "ExploreError";
}
