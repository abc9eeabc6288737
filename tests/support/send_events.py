"""Report an exception and a message to a running `suture serve` with the
real sentry-sdk and its real HTTP transport.

Usage: send_events.py DSN

The SDK compresses with brotli when the `brotli` module is importable (the
test command installs it), else gzip. Prints the compression used and the
two event ids, one per line, so the test can look them up.
"""

import sys

import sentry_sdk


def divide(total, parts):
    return total / parts


def main():
    dsn = sys.argv[1]
    sentry_sdk.init(dsn=dsn, default_integrations=False, release="e2e@1.0", environment="test")
    try:
        import brotli  # noqa: F401

        print("compression br")
    except ImportError:
        print("compression gzip")
    try:
        divide(10, 0)
    except ZeroDivisionError as error:
        print(sentry_sdk.capture_exception(error))
    print(sentry_sdk.capture_message("disk almost full on host-7"))
    sentry_sdk.flush(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
