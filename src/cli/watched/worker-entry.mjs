// Worker bootstrap for running from TypeScript sources (tests, tsx): install tsx's loader in this
// thread, then load the worker. Built code (dist) starts worker.js directly.
const { register } = await import("tsx/esm/api");
register();
await import("./worker.ts");
