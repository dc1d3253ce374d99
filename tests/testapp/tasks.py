"""django.tasks tasks the task backend's tests enqueue (Django 6's django.tasks, else the backport)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import durable_django as durable
from durable_django.task_backend import task_options
from example_project.shop import payments
from tests.testapp.models import Counter

try:
    from django.tasks import TaskContext, task
except ImportError:  # Django 5.2: the django-tasks backport
    from django_tasks import TaskContext, task  # type: ignore[no-redef]


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def refuse(reason: str) -> None:
    raise ValueError(reason)


# Options through task_options(): Django 6.0's @task takes none (6.1 and the backport pass them on).
@task_options(retry=durable.RetryPolicy(max_attempts=4, initial_interval=timedelta(0)))
@task
def flaky_task(fail_times: int) -> int:
    attempt = durable.step_context().attempt
    if attempt <= fail_times:
        raise RuntimeError(f"attempt {attempt} failed")
    return attempt


@task
def always_fails() -> None:
    """No retry option: the backend's OPTIONS decide how often it is tried."""
    raise RuntimeError(f"attempt {durable.step_context().attempt} failed")


@task(takes_context=True)
def introspect(context: TaskContext, value: int) -> dict:
    step = durable.step_context()
    return {
        "attempt": context.attempt,
        "id": context.task_result.id,
        "status": context.task_result.status,
        "key": context.idempotency_key,  # type: ignore[attr-defined]
        "same_key": context.idempotency_key == step.idempotency_key,  # type: ignore[attr-defined]
        "value": value,
    }


@task_options(atomic=True)
@task
def bump_task(name: str) -> int:
    from django.db.models import F

    Counter.objects.get_or_create(name=name)
    Counter.objects.filter(name=name).update(value=F("value") + 1)
    return Counter.objects.get(name=name).value


@task
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0.01)
    return a + b


@task(queue_name="special")
def routed_task() -> str:
    return "ran on special"


@task_options(timeout=timedelta(seconds=5), retry=durable.RetryPolicy(max_attempts=3))
@task(takes_context=True)
def charge_order(context: TaskContext, reference: str, amount_cents: int) -> str:
    """Charge, then take a while to answer: a worker killed meanwhile leaves a charge made, unrecorded."""
    charge = payments.charge(amount_cents, idempotency_key=context.idempotency_key, reference=reference)  # type: ignore[attr-defined]
    if context.attempt == 1:
        time.sleep(3)
    return str(charge["id"])
