import unittest

from shop.pricing import apply_discount, discount_percent, with_tax


class PricingTest(unittest.TestCase):
    def test_discount_code(self):
        self.assertEqual(discount_percent("SAVE10"), 10)

    def test_unknown_code(self):
        with self.assertRaises(ValueError):
            discount_percent("WELCOME")

    def test_apply_discount(self):
        self.assertEqual(apply_discount(2000, "SAVE10"), 1800)

    def test_tax(self):
        self.assertEqual(with_tax(1000), 1080)
