"""The baseline: a plain Celery task that does one ORM insert, chained ``steps`` times."""

from __future__ import annotations

from celery import chain, shared_task

from .models import Row


@shared_task(name="bench.insert_row_task", ignore_result=True)
def insert_row_task(series: int, seq: int) -> None:
    Row.objects.create(series=series, seq=seq)


def start_chain(series: int, steps: int) -> None:
    """Send one chain of ``steps`` insert tasks; Celery sends each link when the previous one succeeds."""
    chain(*(insert_row_task.si(series, seq) for seq in range(steps))).apply_async()
