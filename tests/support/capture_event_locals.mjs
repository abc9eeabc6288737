// Run a Node program under the real @sentry/node with local variables on,
// and save the first event whose crash frame carries them.
//
// As capture_event.mjs, plus `includeLocalVariables` and the
// LocalVariables integration. That integration opens the inspector and
// starts its debugger session in a worker, asynchronously: an exception
// thrown before the session is up reaches the SDK without variables. So
// the program is run again, fresh, until its event's innermost in-app
// frame has `vars` (bounded), the way a long-running service reports a
// crash once the SDK has settled. The program is an ES module when the
// package.json in the working directory says `"type": "module"` (or it
// ends in .mjs), else CommonJS; either way it must throw when loaded.
// Usage: node capture_event_locals.mjs PROGRAM OUT_JSON   (env SUTURE_TEST_RELEASE)
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [program, out] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const Sentry = require("@sentry/node");

const ATTEMPTS = 100;

let event;
function memoryTransport() {
  return {
    send: async ([, items]) => {
      for (const [header, payload] of items) {
        if (header.type === "event") event = payload;
      }
      return { statusCode: 200 };
    },
    flush: async () => true,
  };
}

Sentry.init({
  dsn: "https://public@sentry.invalid/1",
  release: process.env.SUTURE_TEST_RELEASE,
  environment: "production",
  transport: memoryTransport,
  defaultIntegrations: false,
  includeLocalVariables: true,
  // The program's exception is caught here, to be reported: the
  // integration must look at caught exceptions too.
  integrations: [Sentry.localVariablesIntegration({ captureAllExceptions: true })],
});

const path = resolve(program);
function isEsm() {
  if (path.endsWith(".mjs")) return true;
  if (path.endsWith(".cjs")) return false;
  try {
    return JSON.parse(readFileSync("package.json", "utf8")).type === "module";
  } catch {
    return false;
  }
}
const esm = isEsm();
const load = createRequire(path);

async function run(attempt) {
  if (esm) {
    // A new URL is a new module instance: the program runs again.
    await import(`${pathToFileURL(path).href}?attempt=${attempt}`);
  } else {
    delete load.cache[path];
    load(path);
  }
}

function crashFrame(payload) {
  const frames = payload?.exception?.values?.at(-1)?.stacktrace?.frames ?? [];
  return frames.findLast((frame) => frame.in_app !== false);
}

for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
  event = undefined;
  try {
    await run(attempt);
    console.error("program did not raise");
    process.exit(3);
  } catch (error) {
    Sentry.captureException(error);
  }
  await Sentry.flush(2000);
  if (crashFrame(event)?.vars) {
    writeFileSync(out, JSON.stringify(event, null, 1));
    process.exit(0);
  }
  await new Promise((done) => setTimeout(done, 100));
}
console.error(
  `no event carried the crash frame's local variables in ${ATTEMPTS} attempts; last crash frame: ${JSON.stringify(crashFrame(event))}`,
);
process.exit(5);
