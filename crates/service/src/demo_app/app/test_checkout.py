import unittest

from shop.checkout import order_total


class CheckoutTest(unittest.TestCase):
    def test_order_total(self):
        order = {"items": [["green-tea", 2], ["teapot", 1]], "discount": "SAVE10"}
        self.assertEqual(order_total(order), 6123)
