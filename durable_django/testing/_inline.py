"""Work runs in the test's own process, as a worker would, with no broker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import updates
from ..definitions import WorkflowDefinition
from ..exceptions import UpdateTimeout
from ..models import WorkflowRun, WorkItem
from ..runs import get_run, signal
from ..store import outbox
from ..store import updates as update_store
from ..store.leases import database
from ..worker import runner

__all__ = ["no_broker", "run_until_idle", "run_workflow", "send_signal", "send_update"]


def run_until_idle(*, max_items: int = 10_000) -> int:
    """Work every due work item in this process, as a worker would, until none is left due.

    Needs no Celery: steps, advances and due timers run right here, inline, in the
    calling thread (also inside a ``TestCase``'s transaction). Timers and retries that
    are not due yet stay pending; let time pass with :func:`~durable_django.testing.pass_time`.
    Returns how many work items were taken; stops after ``max_items``.
    """
    using = database()
    worked = 0
    while worked < max_items:
        due = list(
            WorkItem.objects.using(using).claimable().order_by("available_at", "pk").values_list("pk", flat=True)
        )
        if not due:
            return worked
        for item_id in due[: max_items - worked]:
            runner.work(item_id)
            worked += 1
    return worked


def run_workflow(
    workflow: WorkflowDefinition[Any], /, *args: Any, workflow_id: str | None = None, **kwargs: Any
) -> WorkflowRun:
    """Start ``workflow(*args, **kwargs)`` and run it until it finishes or waits; return the run, fresh.

    A run that sleeps, waits for a signal or waits to retry a step comes back ``waiting``
    or ``running``: go on with :func:`pass_time` or :func:`send_signal`.
    """
    run = workflow.start(*args, workflow_id=workflow_id, **kwargs)
    run_until_idle()
    run.refresh_from_db()
    return run


def send_signal(run: WorkflowRun | str, name: str, payload: Any = None) -> WorkflowRun:
    """Send signal ``name`` to ``run`` (or the run with this ``workflow_id``), run until idle; return it fresh."""
    run = get_run(run)
    signal(run, name, payload)
    run_until_idle()
    run.refresh_from_db()
    return run


def send_update(run: WorkflowRun | str, name: str, payload: Any = None, *, update_id: str | None = None) -> Any:
    """Send update ``name`` to ``run``, run until idle, and return the workflow's reply.

    Raises ``UpdateRejected`` as ``run.update()`` does, and ``UpdateTimeout`` if the run has
    not answered once nothing is left to do now (it waits for time to pass, or for a signal).
    Works inside a ``TestCase``'s transaction, unlike ``run.update()``.
    """
    run = get_run(run)
    update_id = updates.send(run, name, payload, update_id=update_id)
    run_until_idle()
    answered, reply = updates.outcome(run, name, update_store.read_answer(database(), run.pk, update_id))
    if not answered:
        raise UpdateTimeout(
            f"run {run.workflow_id!r} has not answered update {name!r} with nothing left to do now; "
            "let time pass (pass_time) or send what the workflow waits for first."
        )
    return reply


@contextmanager
def no_broker() -> Iterator[None]:
    """Inside, wake-up messages are dropped instead of sent to Celery, and no broker is asked anything.

    Only transactional tests need it: a ``TestCase`` never commits, so it never sends
    any. Nothing is lost: the work waits in the database for :func:`run_until_idle`.
    """
    saved = outbox.publish, outbox.publish_timers, outbox.publish_many, outbox.queue_length

    def publish(item_id: int, queue: str, countdown: float | None = None) -> bool:
        return True

    def publish_timers(item_ids: list[int], queue: str) -> bool:
        return True

    def queue_length(queue: str) -> int | None:
        return 0

    outbox.publish, outbox.publish_timers, outbox.publish_many, outbox.queue_length = (
        publish, publish_timers, publish_timers, queue_length,
    )  # fmt: skip
    try:
        yield
    finally:
        outbox.publish, outbox.publish_timers, outbox.publish_many, outbox.queue_length = saved
