// Run a Node program under the real @sentry/node and save the event it reports.
//
// The SDK is initialised as an application would (a DSN, a release, an
// environment) with a transport that writes the envelope's event item to
// OUT_JSON instead of sending it, so nothing leaves the machine. The module
// that resolves @sentry/node comes from NODE_PATH (scripts/test installs it
// under target/test-node).
// Usage: node capture_event.mjs PROGRAM OUT_JSON   (env SUTURE_TEST_RELEASE)
import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [program, out] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const Sentry = require("@sentry/node");

let written = false;
function fileTransport() {
  return {
    send: async (envelope) => {
      const [, items] = envelope;
      for (const [header, payload] of items) {
        if (header.type === "event") {
          writeFileSync(out, JSON.stringify(payload, null, 1));
          written = true;
        }
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
  transport: fileTransport,
  defaultIntegrations: false,
});

try {
  await import(pathToFileURL(resolve(program)).href);
  console.error("program did not raise");
  process.exit(3);
} catch (error) {
  Sentry.captureException(error);
  await Sentry.flush(2000);
  process.exit(written ? 0 : 4);
}
