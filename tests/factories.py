"""factory-boy factories for the test data."""

from __future__ import annotations

import factory

from example_project.shop.models import Order


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    amount_cents = factory.Sequence(lambda n: 500 + n)
