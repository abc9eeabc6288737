"""Order totals."""

from shop import catalog, pricing


def order_total(order):
    """An order's total in cents: its lines, less its discount, plus tax."""
    subtotal = sum(catalog.price_of(sku) * quantity for sku, quantity in order["items"])
    return pricing.with_tax(pricing.apply_discount(subtotal, order.get("discount", "")))
