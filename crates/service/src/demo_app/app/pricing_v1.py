"""Prices in cents: line totals, discount codes and tax."""

TAX_PERCENT = 8


def discount_percent(code):
    """Percent off for a discount code: 'SAVE10' -> 10.

    The checkout form sends an empty string when the field is left blank,
    and a blank code means no discount.
    """
    if not code:
        return 0
    code = code.strip().upper()
    if not code.startswith("SAVE"):
        raise ValueError(f"unknown discount code {code!r}")
    return int(code[len("SAVE"):])


def apply_discount(cents, code):
    return cents - cents * discount_percent(code) // 100


def with_tax(cents):
    return cents + cents * TAX_PERCENT // 100
