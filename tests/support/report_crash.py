"""Run a Python program under the real sentry-sdk, reporting its crash to a
DSN over the SDK's real HTTP transport, the way a deployed application
reports to Sentry (here: to a running `suture serve`).

Usage: report_crash.py DSN PROGRAM RELEASE

An empty RELEASE sends an event without one (the SDK would otherwise fill
it in, e.g. from the current git commit).

Prints the reported event's id. The program's uncaught exception is
reported with capture_exception, as the SDK's excepthook integration would.
"""

import os
import runpy
import sys

import sentry_sdk


def _without_release(event, _hint):
    event.pop("release", None)
    return event


def main():
    dsn, program, release = sys.argv[1], sys.argv[2], sys.argv[3]
    sentry_sdk.init(
        dsn=dsn,
        release=release or None,
        before_send=None if release else _without_release,
        environment="production",
        default_integrations=False,
    )
    sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
    try:
        runpy.run_path(program, run_name="__main__")
    except Exception as error:  # noqa: BLE001 - the point is to report it
        print(sentry_sdk.capture_exception(error))
        sentry_sdk.flush(timeout=30)
        return 0
    print("program did not raise", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
