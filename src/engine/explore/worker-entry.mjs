// Worker bootstrap for running from TypeScript sources (tests, tsx): install tsx's
// loader in this worker thread, then load the worker implementation. Built code
// (dist) points piscina at worker.js directly and never loads this file.
const { register } = await import("tsx/esm/api");
register();
const impl = await import("./worker.ts");
export default impl.default;
