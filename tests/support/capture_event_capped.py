"""Run a Python program under the real sentry-sdk, with string values capped
as an application may configure them, and save the event it reports.

Usage: capture_event_capped.py PROGRAM OUT_JSON MAX_VALUE_LENGTH

Like capture_event.py (no network: the envelope's event is written to
OUT_JSON), but with the SDK's `max_value_length` set, so that a long string
among a frame's local variables arrives cut short with `...`, as it does
for applications that set the option (it was the SDK's default, 1024,
before sentry-sdk 2.x lifted it). Environment: SUTURE_TEST_RELEASE sets the
release.
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


def main():
    program, out, cap = sys.argv[1], sys.argv[2], int(sys.argv[3])
    FileTransport.path = out
    sentry_sdk.init(
        dsn="https://public@sentry.invalid/1",
        transport=FileTransport,
        release=os.environ.get("SUTURE_TEST_RELEASE"),
        environment="production",
        default_integrations=False,
        max_value_length=cap,
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
