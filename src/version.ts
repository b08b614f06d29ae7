/** tdplab's version, and the version of the model's semantics (bumped when a verdict may change). */
export const TOOL_VERSION = "0.1.0";
export const MODEL_VERSION = "1";
