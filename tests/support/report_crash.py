"""Run a Python program under the real sentry-sdk, reporting its crash to a
DSN over the SDK's real HTTP transport, the way a deployed application
reports to Sentry (here: to a running `suture serve`).

Usage: report_crash.py DSN PROGRAM RELEASE [COUNT]

An empty RELEASE sends an event without one (the SDK would otherwise fill
it in, e.g. from the current git commit).

Prints the reported event's id (COUNT > 1: the program runs COUNT times,
one crash each, and the last id is printed: a burst). The program's
uncaught exception is reported with capture_exception, as the SDK's
excepthook integration would.
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
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
    last = None
    for _ in range(count):
        try:
            runpy.run_path(program, run_name="__main__")
        except Exception as error:  # noqa: BLE001 - the point is to report it
            last = sentry_sdk.capture_exception(error)
            continue
        print("program did not raise", file=sys.stderr)
        return 3
    sentry_sdk.flush(timeout=30)
    print(last)
    return 0


if __name__ == "__main__":
    sys.exit(main())
