"""The nightly checkout: totals every pending order.

Usage: python3 main.py [DSN [RELEASE]]; a crash is reported to DSN.
"""

import json
import os
import sys

import crash_report
from shop.checkout import order_total


def run(path):
    with open(path) as orders:
        for order in json.load(orders):
            print(f"order {order['id']}: {order_total(order)} cents")


if __name__ == "__main__":
    dsn = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("SENTRY_DSN")
    release = sys.argv[2] if len(sys.argv) > 2 else None
    with crash_report.reporting(dsn, release):
        run(os.path.join(os.path.dirname(os.path.abspath(__file__)), "orders.json"))
