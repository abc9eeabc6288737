"""Run a Python program under the real sentry-sdk and save the event it reports.

Usage: capture_event.py PROGRAM OUT_JSON

The SDK is initialised as an application would (a DSN, a release, an
environment) but with a transport that writes the envelope's event to
OUT_JSON instead of sending it, so nothing leaves the machine. The program's
uncaught exception is reported with capture_exception, the way the SDK's
excepthook integration would. Environment: SUTURE_TEST_RELEASE sets the
release; SUTURE_TEST_MAX_VALUE_LENGTH sets the SDK's `max_value_length`, so a
long string among a frame's local variables arrives cut short with `...`, as
it does for applications that set the option (it was the SDK's default, 1024,
before sentry-sdk 2.x lifted it).
"""

import json
import os
import runpy
import sys

import sentry_sdk
from sentry_sdk.transport import Transport


class FileTransport(Transport):
    path = None

    def capture_envelope(self, envelope):
        event = envelope.get_event()
        if event is not None:
            with open(FileTransport.path, "w") as out:
                json.dump(event, out, indent=1, default=str)

    def flush(self, timeout, callback=None):
        return None

    def kill(self):
        return None


def max_value_length():
    cap = os.environ.get("SUTURE_TEST_MAX_VALUE_LENGTH")
    return {"max_value_length": int(cap)} if cap else {}


def main():
    program, out = sys.argv[1], sys.argv[2]
    FileTransport.path = out
    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        transport=FileTransport,
        release=os.environ.get("SUTURE_TEST_RELEASE"),
        environment="production",
        default_integrations=False,
        **max_value_length(),
    )
    sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
    try:
        runpy.run_path(program, run_name="__main__")
    except Exception as error:  # noqa: BLE001 - the point is to report it
        sentry_sdk.capture_exception(error)
        sentry_sdk.flush()
        return 0
    print("program did not raise", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
