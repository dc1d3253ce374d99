"""Library behaviour the toolkit once worked around, now fixed in the library."""

from __future__ import annotations

import pytest
from django.db import transaction

from durable_django.models import WorkItem
from durable_django.worker import runner
from tests.testapp.workflows import collect

pytestmark = [pytest.mark.django_db]


def test_a_signal_after_the_run_advanced_in_the_same_transaction_wakes_it_again():
    with transaction.atomic():
        run = collect.start(1)
        (item,) = WorkItem.objects.filter(run=run)
        runner.work(item.pk)  # the run advances and waits for "item"
        assert not WorkItem.objects.filter(run=run).exists()
        run.signal("item", "x")
        assert WorkItem.objects.filter(run=run, kind=WorkItem.Kind.ADVANCE).exists(), "nothing will advance the run"
