"""The baselines: a plain Celery task that does one ORM insert, chained ``steps`` times; and one that
touches no database at all, ``value + 1`` as the durable trivial step does, chained the same way.
"""

from __future__ import annotations

import time
from functools import cache

import redis
from celery import chain, shared_task
from django.conf import settings

from .models import Row

#: The Redis list (in the broker's database, flushed before every measurement) where the last task
#: of each no-database chain says it is done: "<series> <value> <time.time()>".
DONE_KEY = "bench:chain-done"


@shared_task(name="bench.insert_row_task", ignore_result=True)
def insert_row_task(series: int, seq: int) -> None:
    Row.objects.create(series=series, seq=seq)


def start_chain(series: int, steps: int) -> None:
    """Send one chain of ``steps`` insert tasks; Celery sends each link when the previous one succeeds."""
    chain(*(insert_row_task.si(series, seq) for seq in range(steps))).apply_async()


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.CELERY_BROKER_URL)


@shared_task(name="bench.add_one", ignore_result=True)
def add_one(value: int, series: int, last: bool) -> int:
    """The durable trivial step's work, as a plain task: no database; the last of a chain reports to Redis."""
    if last:
        _redis().rpush(DONE_KEY, f"{series} {value + 1} {time.time()}")
    return value + 1


def start_plain_chain(series: int, steps: int) -> None:
    """One chain of ``steps`` ``add_one`` tasks, each result passed to the next, as the workflow's steps are."""
    links = [add_one.s(series, seq == steps - 1) for seq in range(1, steps)]
    chain(add_one.s(0, series, steps == 1), *links).apply_async()


def plain_chains_done() -> dict[int, tuple[int, float]]:
    """series -> (final value, time) of the no-database chains that finished."""
    found: dict[int, tuple[int, float]] = {}
    for entry in _redis().lrange(DONE_KEY, 0, -1):
        series, value, at = entry.decode().split()
        found[int(series)] = (int(value), float(at))
    return found
