"""``run.wait()`` and ``await run.await_result()``: the result, the run's error, or a timeout.

On PostgreSQL the finishing transaction sends a NOTIFY (a trigger on the run's status), so a
waiter reads the run once, sleeps on its connection, and reads it again when told; on SQLite
it polls, ever less often, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

import durable_django as durable
from durable_django import waiting
from durable_django.models import WorkflowRun, WorkItem
from durable_django.testing import run_until_idle
from durable_django.worker import runner
from tests.testapp.workflows import chain, echo_workflow, nap, refuses

from .waiting import wait_status

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.broker
def test_wait_returns_the_result_once_a_worker_finishes_the_run(worker):
    run = echo_workflow.start(21, note="hi")
    assert run.wait(timeout=30) == {"value": 21, "doubled": 42, "extra": {"note": "hi"}}
    assert run.status == WorkflowRun.Status.COMPLETED and run.finished_at is not None


@pytest.mark.broker
def test_wait_raises_run_failed_with_the_original_type_and_message(worker):
    run = refuses.start("out of stock")
    with pytest.raises(durable.RunFailed) as caught:
        run.wait(timeout=30)
    failure = caught.value
    assert (failure.error_type, failure.message) == ("builtins.ValueError", "out of stock")
    assert failure.workflow_id == run.workflow_id and "raise ValueError(reason)" in failure.traceback
    assert str(failure) == f"run {run.workflow_id!r} failed: builtins.ValueError: out of stock"
    assert run.status == WorkflowRun.Status.FAILED


@pytest.mark.broker
def test_wait_raises_cancelled_for_a_cancelled_run(worker):
    run = nap.start(3600)
    wait_status(run, WorkflowRun.Status.WAITING, timeout=30)
    run.cancel()
    with pytest.raises(durable.Cancelled):
        run.wait(timeout=30)


@pytest.mark.usefixtures("no_messages")
def test_wait_gives_up_after_its_timeout_with_a_timeout_error():
    run = nap.start(3600)  # nobody works it
    started = time.monotonic()
    with pytest.raises(TimeoutError) as caught:
        run.wait(timeout=0.5)
    elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2.5
    assert isinstance(caught.value, durable.WaitTimeout) and run.workflow_id in str(caught.value)


@pytest.mark.usefixtures("no_messages")
def test_wait_inside_an_open_transaction_says_why_instead_of_waiting_on_itself():
    # Inside transaction.atomic() (ATOMIC_REQUESTS, a TestCase) a run started there is seen by
    # no worker until the block commits, and on SQLite the open transaction holds the lock every
    # worker's write needs: the wait could only time out (or find no run at all).
    with transaction.atomic():
        run = echo_workflow.start(1)
        with pytest.raises(durable.InvalidRequest, match=r"wait\(\) was called inside an open transaction.*on_commit"):
            run.wait(timeout=1)
    assert WorkflowRun.objects.filter(pk=run.pk).exists()  # the refusal left the caller's transaction usable


@pytest.mark.usefixtures("no_messages")
def test_wait_inside_an_open_transaction_answers_at_once_for_a_run_that_has_finished_there():
    # A TestCase works a run to its end in-process (run_until_idle) inside its transaction:
    # nothing is left to wait for, so wait() answers from what this transaction sees.
    with transaction.atomic():
        run = echo_workflow.start(5)
        run_until_idle()
        assert run.wait(timeout=1) == {"value": 5, "doubled": 10, "extra": {}}
        failed = refuses.start("sold out")
        run_until_idle()
        with pytest.raises(durable.RunFailed, match="sold out"):
            failed.wait(timeout=1)


@pytest.mark.usefixtures("no_messages")
def test_a_timeout_of_zero_looks_once_and_a_negative_one_is_refused():
    run = nap.start(3600)
    with pytest.raises(durable.WaitTimeout):
        run.wait(timeout=0)
    with pytest.raises(durable.InvalidRequest):
        run.wait(timeout=-1)


@pytest.mark.usefixtures("no_messages")
def test_a_finished_run_answers_at_once():
    run = echo_workflow.start(1)
    run_until_idle()
    started = time.monotonic()
    assert run.wait(timeout=5)["doubled"] == 2
    assert time.monotonic() - started < 0.5


def _work_later(delay: float) -> threading.Thread:
    """Work every due item in another thread (its own connection) after ``delay`` seconds."""

    def work() -> None:
        time.sleep(delay)
        try:
            run_until_idle()
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def _counting_reads(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    reads: list[float] = []
    for name in ("outcome_of_row",):
        original = getattr(waiting, name)

        def spy(*args, _original=original, **kwargs):
            reads.append(time.monotonic())
            return _original(*args, **kwargs)

        monkeypatch.setattr(waiting, name, spy)
    return reads


@pytest.mark.postgres
@pytest.mark.usefixtures("no_messages")
def test_on_postgresql_a_waiter_reads_the_run_once_then_sleeps_until_notified(monkeypatch):
    run = echo_workflow.start(2)
    reads = _counting_reads(monkeypatch)
    worker = _work_later(1.5)
    try:
        assert run.wait(timeout=20)["doubled"] == 4
    finally:
        worker.join(30)
    assert len(reads) == 2, f"{len(reads)} reads: a poll, not a wait for NOTIFY"
    assert reads[1] - reads[0] >= 1.4


@pytest.mark.usefixtures("no_messages")
def test_on_sqlite_or_without_listen_a_waiter_polls_a_bounded_number_of_times(monkeypatch, settings):
    settings.DURABLE_WAIT_LISTEN = False  # PostgreSQL polls as SQLite does (behind a transaction pooler)
    run = nap.start(3600)
    reads = _counting_reads(monkeypatch)
    with pytest.raises(durable.WaitTimeout):
        run.wait(timeout=3)
    # Every 50 ms at first, then ever less often, up to once a second: not a busy loop.
    assert 5 <= len(reads) <= 16, len(reads)


@pytest.mark.postgres
@pytest.mark.usefixtures("no_messages")
def test_the_fast_paths_one_statement_completion_notifies_in_its_transaction():
    run = chain.start(3)
    with waiting.listener(run) as listen:
        with CaptureQueriesContext(connection) as queries:
            runner.work(WorkItem.objects.get(run=run).pk)
        statements = [query["sql"].split(None, 1)[0] for query in queries.captured_queries]
        assert statements[-1] == "WITH", "the run did not end on the fast path"
        assert listen.notified(timeout=5) == "completed"


@pytest.mark.postgres
def test_a_finish_that_rolls_back_notifies_nobody():
    run = nap.start(3600)
    with waiting.listener(run) as listen:
        with pytest.raises(RuntimeError), transaction.atomic():
            WorkflowRun.objects.filter(pk=run.pk).update(status=WorkflowRun.Status.COMPLETED, result_json="1")
            raise RuntimeError("rolled back")
        assert listen.notified(timeout=0.5) is None
        WorkflowRun.objects.filter(pk=run.pk).update(status=WorkflowRun.Status.COMPLETED, result_json="1")
        assert listen.notified(timeout=5) == "completed"


@pytest.mark.broker
def test_await_result_returns_the_result_from_async_code(worker):
    run = echo_workflow.start(5)
    assert asyncio.run(run.await_result(timeout=30)) == {"value": 5, "doubled": 10, "extra": {}}


@pytest.mark.broker
def test_await_result_raises_the_runs_error(worker):
    run = refuses.start("no")
    with pytest.raises(durable.RunFailed, match=r"builtins\.ValueError: no"):
        asyncio.run(run.await_result(timeout=30))


@pytest.mark.usefixtures("no_messages")
def test_await_result_gives_up_after_its_timeout():
    run = nap.start(3600)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        asyncio.run(run.await_result(timeout=0.5))
    assert 0.5 <= time.monotonic() - started < 2.5


@pytest.mark.usefixtures("no_messages")
def test_await_result_does_not_block_the_event_loop():
    run = nap.start(3600)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        for _ in range(40):
            await asyncio.sleep(0.02)
            ticks += 1

    async def both() -> list[object]:
        return await asyncio.gather(run.await_result(timeout=1.5), tick(), return_exceptions=True)

    awaited, _ = asyncio.run(both())
    assert isinstance(awaited, durable.WaitTimeout)
    assert ticks == 40, "the loop was blocked while the run was awaited"
