"""What the shop sells, in cents."""

PRICES = {
    "green-tea": 1200,
    "black-tea": 1100,
    "teapot": 3900,
    "tea-sampler": 2400,
}


def price_of(sku):
    return PRICES[sku]
