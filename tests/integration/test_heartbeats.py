"""Long steps report progress: the lease stays theirs, a later attempt resumes, a cancel reaches them."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest

import durable_django as durable
from durable_django.core.interpreter import error_info
from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.store import work_items
from durable_django.store.owners import Owner
from durable_django.testing import no_broker, run_until_idle
from tests.testapp.compositions import importer
from tests.testapp.models import Counter

from .waiting import wait_finished, wait_for

Status = WorkflowRun.Status


def counter(name: str) -> int:
    found = Counter.objects.filter(name=name).first()
    return 0 if found is None else found.value


def claim(run: WorkflowRun) -> work_items.Claim:
    (item,) = WorkItem.objects.filter(run=run, kind=WorkItem.Kind.ADVANCE).values_list("pk", flat=True)
    held = work_items.take(item)
    assert held is not None
    return held


@pytest.mark.django_db
def test_a_heartbeat_extends_the_lease_keeps_the_details_and_says_whether_the_run_was_cancelled():
    run = importer.start("beat", 10)
    held = claim(run)
    item = WorkItem.objects.get(pk=held.item_id)
    WorkItem.objects.filter(pk=item.pk).update(lease_expires_at=item.lease_expires_at.replace(year=2000))
    assert work_items.heartbeat(held, "7") is False
    item.refresh_from_db()
    assert item.lease_expires_at.year > 2000, "the lease was not extended"
    assert HistoryEntry.objects.get(run=run, seq=0).heartbeat_json == "7"
    run.cancel()
    assert work_items.heartbeat(held, "8") is True


@pytest.mark.django_db
def test_a_zombies_heartbeat_is_refused_by_the_fencing_token():
    run = importer.start("zombie", 10)
    held = claim(run)
    WorkItem.objects.filter(pk=held.item_id).update(token=held.token + 1)  # another attempt claimed it since
    with pytest.raises(durable.LeaseLost, match="no longer holds it"):
        work_items.heartbeat(held, "1")


@pytest.mark.django_db
def test_the_next_attempt_reads_the_last_heartbeat_details():
    run = importer.start("resume", 10)
    held = claim(run)
    work_items.heartbeat(held, "4")
    work_items.record_failure(held, error_info(RuntimeError("lost the connection")), retry_in=timedelta(0))
    retried = work_items.take(held.item_id)
    assert retried is not None and retried.attempt == 2
    assert retried.heartbeat_json == "4"


@pytest.mark.broker
def test_a_long_import_killed_mid_step_resumes_from_its_last_offset(worker):
    run = importer.start("killed", 40, 0.25)
    wait_for(lambda: counter("killed:rows") >= 12, timeout=30, what="the import to be a dozen rows in")
    worker.kill()
    worker.start()
    (run,) = wait_finished([run], timeout=60)
    assert run.status == Status.COMPLETED, run.error
    assert run.result["imported"] == 40
    assert run.result["resumed_from"] >= 6, run.result  # heartbeats are written at most once a second
    assert counter("killed:rows") - 40 <= 12, "the second attempt redid more than it had to"
    assert counter("killed:attempts") == 2


@pytest.mark.broker
def test_a_step_that_stops_heartbeating_is_taken_over_after_its_heartbeat_timeout_not_its_timeout(worker):
    run = importer.start("stalled", 20, 0.25)
    wait_for(lambda: counter("stalled:rows") >= 3, timeout=30, what="the import to start")
    owner = WorkItem.objects.get(run=run, kind=WorkItem.Kind.STEP).owner
    pid = owner_pid(owner)
    os.kill(pid, signal.SIGSTOP)  # alive but silent: no dead-owner reclaim, only the heartbeat timeout
    try:
        began = time.monotonic()
        wait_for(lambda: counter("stalled:attempts") == 2, timeout=30, what="a second attempt")
        taken_over = time.monotonic() - began
    finally:
        os.kill(pid, signal.SIGCONT)  # its next heartbeat raises LeaseLost; its result is refused
    (run,) = wait_finished([run], timeout=60)
    assert run.status == Status.COMPLETED
    assert taken_over < 20, f"taken over after {taken_over:.1f} s: that is the step's timeout, not its heartbeat's"


@pytest.mark.django_db
def test_a_heartbeat_timeout_on_an_atomic_step_is_refused_where_it_is_declared():
    with pytest.raises(durable.WorkflowDefinitionError, match="cannot report progress"):

        @durable.step(atomic=True, heartbeat_timeout=timedelta(seconds=5))
        def short() -> None: ...


@pytest.mark.django_db
def test_a_heartbeat_inline_in_a_test_runs_the_import_to_the_end():
    run = importer.start("inline", 5)
    run_until_idle()
    run.refresh_from_db()
    assert (run.status, run.result) == (Status.COMPLETED, {"imported": 5, "resumed_from": 0})


def owner_pid(owner: str) -> int:
    """The pid in a lease's owner (``host:pid:namespace:boot:started``)."""
    parsed = Owner.parse(owner)
    assert parsed is not None, f"not an owner: {owner!r}"
    return parsed.pid


def _leased_step() -> tuple[WorkflowRun, work_items.Claim]:
    """An echo run whose step is leased to this "worker", its lease running out in a second."""
    from durable_django.store.querysets import db_now_plus
    from tests.testapp.workflows import echo_workflow

    with no_broker():
        run = echo_workflow.start(21)
    (first,) = WorkItem.objects.filter(run=run).values_list("pk", flat=True)
    held = work_items.take(first)
    assert held is not None
    WorkItem.objects.filter(pk=held.item_id).update(lease_expires_at=db_now_plus(1.0))
    return run, held


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres  # row locks: on SQLite a caller's write transaction holds the whole database
def test_recording_a_result_while_a_caller_holds_the_run_waits_and_keeps_the_lease():
    import threading

    from django.db import connections, transaction

    from durable_django.worker import runner

    run, held = _leased_step()
    expiry = WorkItem.objects.get(pk=held.item_id).lease_expires_at
    seen: list[object] = []

    def caller() -> None:
        try:
            with transaction.atomic():
                WorkflowRun.objects.select_for_update().get(pk=run.pk)  # as run.cancel() holds it
                time.sleep(2.5)  # past the lease the worker had
                seen.append(WorkItem.objects.get(pk=held.item_id).lease_expires_at)
        finally:
            connections.close_all()

    holder = threading.Thread(target=caller)
    holder.start()
    time.sleep(0.3)
    began = time.monotonic()
    runner._report(held, lambda: work_items.record_success(held, "42"))
    waited = time.monotonic() - began
    holder.join(10)
    assert waited > 1.5, "the result was recorded while the caller held the run"
    (during,) = seen
    assert during > expiry + timedelta(seconds=10), "the lease lapsed while the worker waited to record"
    with no_broker():
        run_until_idle()
    run.refresh_from_db()
    assert (run.status, run.result["doubled"]) == (WorkflowRun.Status.COMPLETED, 42)


@pytest.mark.django_db(transaction=True)
def test_a_database_error_while_recording_hands_the_step_back_at_once():
    from django.db import OperationalError
    from django.utils import timezone

    from durable_django.worker import runner

    run, held = _leased_step()
    WorkItem.objects.filter(pk=held.item_id).update(lease_expires_at=timezone.now() + timedelta(minutes=5))

    def record() -> None:
        raise OperationalError("server closed the connection unexpectedly")

    with pytest.raises(OperationalError):
        runner._report(held, record)
    item = WorkItem.objects.get(pk=held.item_id)
    assert item.lease_expires_at <= timezone.now(), "the lease is held for its timeout after the error"
    assert item.failures == 0  # the connection's error says nothing about the work: not counted
    with no_broker():
        run_until_idle()
    run.refresh_from_db()
    assert run.status == WorkflowRun.Status.COMPLETED
    assert HistoryEntry.objects.get(run=run, seq=0).attempts == 2
