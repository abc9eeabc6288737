"""Reports an uncaught exception to a Sentry DSN, using only the standard
library: the event carries what sentry-sdk would send (in-app frames with
their source context and local variables) so that any Sentry-compatible
service, suture included, can work from it.

    with crash_report.reporting(dsn, release):
        main()
"""

import contextlib
import json
import linecache
import os
import sys
import time
import urllib.parse
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.abspath(__file__))
CONTEXT_LINES = 5
# sentry-sdk's limits for local variables: items per container and depth.
MAX_BREADTH = 10
MAX_DEPTH = 5


@contextlib.contextmanager
def reporting(dsn, release):
    """Runs the block; an exception escaping it is reported, then re-raised."""
    try:
        yield
    except Exception as error:
        if dsn:
            event_id = send(dsn, event_of(error, release))
            print(f"crash reported to {dsn.split('@')[-1]} as event {event_id}", file=sys.stderr)
        raise


def event_of(error, release):
    return {
        "event_id": uuid.uuid4().hex,
        "timestamp": time.time(),
        "platform": "python",
        "level": "error",
        "release": release,
        "environment": "production",
        "sdk": {"name": "demo.crash_report", "version": "1.0"},
        "exception": {
            "values": [
                {
                    "type": type(error).__name__,
                    "value": str(error),
                    "module": type(error).__module__,
                    "mechanism": {"type": "excepthook", "handled": False},
                    "stacktrace": {"frames": frames_of(error.__traceback__)},
                }
            ]
        },
    }


def frames_of(traceback):
    frames = []
    while traceback is not None:
        frame, lineno = traceback.tb_frame, traceback.tb_lineno
        traceback = traceback.tb_next
        abs_path = os.path.abspath(frame.f_code.co_filename)
        if abs_path == os.path.abspath(__file__):
            continue  # the reporter's own `with` block is no part of the crash
        in_app = abs_path.startswith(ROOT + os.sep)
        lines = linecache.getlines(abs_path)
        frames.append(
            {
                "filename": os.path.relpath(abs_path, ROOT) if in_app else abs_path,
                "abs_path": abs_path,
                "function": frame.f_code.co_name,
                "module": frame.f_globals.get("__name__"),
                "lineno": lineno,
                "pre_context": [l.rstrip("\n") for l in lines[max(0, lineno - 1 - CONTEXT_LINES) : lineno - 1]],
                "context_line": lines[lineno - 1].rstrip("\n") if 0 < lineno <= len(lines) else None,
                "post_context": [l.rstrip("\n") for l in lines[lineno : lineno + CONTEXT_LINES]],
                "vars": {name: serialize(value) for name, value in frame.f_locals.items()},
                "in_app": in_app,
            }
        )
    return frames


def serialize(value, depth=0):
    """A local variable as sentry-sdk sends it: scalars as their repr,
    containers as JSON containers (cut to MAX_BREADTH items)."""
    if isinstance(value, dict) and depth < MAX_DEPTH:
        items = list(value.items())[:MAX_BREADTH]
        return {str(key): serialize(item, depth + 1) for key, item in items}
    if isinstance(value, (list, tuple, set, frozenset)) and depth < MAX_DEPTH:
        return [serialize(item, depth + 1) for item in list(value)[:MAX_BREADTH]]
    try:
        return repr(value)
    except Exception:
        return "<unrepresentable>"


def send(dsn, event):
    """Posts the event as an SDK envelope; returns its id."""
    url = urllib.parse.urlsplit(dsn)
    key, host = url.netloc.split("@", 1)
    project = url.path.strip("/")
    payload = json.dumps(event).encode()
    envelope = b"\n".join(
        [
            json.dumps({"event_id": event["event_id"], "dsn": dsn}).encode(),
            json.dumps({"type": "event", "content_type": "application/json", "length": len(payload)}).encode(),
            payload,
            b"",
        ]
    )
    request = urllib.request.Request(
        f"{url.scheme}://{host}/api/{project}/envelope/",
        data=envelope,
        headers={
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_client=demo.crash_report/1.0, sentry_key={key}",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"{}").get("id", event["event_id"])
