"""One lock order everywhere (store/locking.py): two workers driven into the old deadlock's interleaving.

A worker claiming a step locks the work item, then updates the step's entry. An advance
settling that step as cancelled (a cancel, or an any_of's loser) used to update the entry
first and delete the item second: each then waited for the other. Here the claim is held,
with a barrier, right after it locked the item, while the advance runs; the advance must
wait for the claim, never deadlock.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connections, transaction

from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.store import work_items
from durable_django.testing import no_broker, run_until_idle
from tests.testapp.compositions import routed_or_signal
from tests.testapp.models import Counter

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(action: Any, errors: list[BaseException], name: str | None = None) -> threading.Thread:
    def target() -> None:
        try:
            action()
        except BaseException as error:  # reported to the test, which fails on it
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread


def test_a_group_settling_its_loser_while_a_worker_claims_it_waits_instead_of_deadlocking(monkeypatch):
    """The any_of's signal wins while a worker claims the losing step: the loser is settled under the claim."""
    with no_broker():
        run = routed_or_signal.start()
        (first,) = WorkItem.objects.filter(run=run).values_list("pk", flat=True)
        assert work_items.take(first) is None  # the first advance: the step is queued for the "special" queue
        step = WorkItem.objects.get(run=run, kind=WorkItem.Kind.STEP)
        assert step.lease_expires_at is None
        run.signal("go", "now")
        (advance,) = WorkItem.objects.filter(run=run, kind=WorkItem.Kind.ADVANCE).values_list("pk", flat=True)

        item_locked, settle_started = threading.Event(), threading.Event()
        lock_claimable = work_items._lock_claimable

        def held_after_locking(using: str, item_id: int) -> Any:
            row = lock_claimable(using, item_id)
            if item_id == step.pk:
                item_locked.set()
                settle_started.wait(10)
                threading.Event().wait(1.5)  # long enough for the advance to reach whatever it locks next
            return row

        monkeypatch.setattr(work_items, "_lock_claimable", held_after_locking)
        errors: list[BaseException] = []
        claims: list[Any] = []
        claimer = in_thread(lambda: claims.append(work_items.take(step.pk)), errors)
        assert item_locked.wait(10)

        def settle() -> None:
            settle_started.set()
            work_items.take(advance)

        settler = in_thread(settle, errors)
        claimer.join(30)
        settler.join(30)
        assert not errors, f"the two transactions failed: {errors!r}"
        (held,) = claims
        assert held is not None and held.attempt == 1, "the claim lost"
        run_until_idle()
    run.refresh_from_db()
    assert (run.status, run.result) == (WorkflowRun.Status.COMPLETED, [1, "now"])
    loser = HistoryEntry.objects.get(run=run, name="tests.routed")
    assert loser.status == HistoryEntry.Status.CANCELLED
    assert not WorkItem.objects.filter(run=run).exists()
    assert work_items.record_success(held, '"late"') is None  # the loser's late result is refused


@pytest.mark.postgres  # SQLite has no row locks: a caller's write transaction holds the whole database
def test_a_callers_open_transaction_never_stalls_a_worker():
    from durable_django.store import outbox
    from durable_django.store.locking import RunBusy
    from tests.testapp.workflows import echo_workflow

    with no_broker():
        run = echo_workflow.start(21)
        (first,) = WorkItem.objects.filter(run=run).values_list("pk", flat=True)
        held = work_items.take(first)  # the step, leased to this "worker"
        assert held is not None
        with transaction.atomic():
            outbox.wake("default", run.pk)  # an advance item, committed before the caller comes
        (advance,) = WorkItem.objects.filter(run=run, kind=WorkItem.Kind.ADVANCE).values_list("pk", flat=True)
        holding, release = threading.Event(), threading.Event()
        errors: list[BaseException] = []

        def caller() -> None:
            with transaction.atomic():
                run.signal("note", "hello")  # shares the run's row until this commits
                holding.set()
                release.wait(10)

        sender = in_thread(caller, errors)
        assert holding.wait(10)
        try:
            began = time.monotonic()
            assert work_items.take(advance) is None  # the row is held: the worker moves on
            with pytest.raises(RunBusy):
                work_items.record_success(held, "42")  # the runner waits outside any transaction, then retries
            assert time.monotonic() - began < 2, "a worker waited for the caller's transaction"
            assert WorkItem.objects.filter(pk=advance).exists() and WorkItem.objects.filter(pk=held.item_id).exists()
        finally:
            release.set()
            sender.join(10)
        assert not errors
        assert work_items.record_success(held, "42") is None  # once the caller committed
        run_until_idle()
    run.refresh_from_db()
    assert (run.status, run.result["doubled"]) == (WorkflowRun.Status.COMPLETED, 42)


@pytest.mark.postgres  # row locks: on SQLite one write transaction holds the whole database
def test_a_third_failure_to_record_a_step_while_an_advance_holds_the_run_neither_deadlocks_nor_waits(monkeypatch):
    """The poison count takes the run before the item, as every writer does, and never waits for it.

    Here a cancel's advance holds the run (and will cancel the step's item next) while the worker
    fails to record that step for the third time. Locking the item first and then waiting for
    the run, the two deadlocked; now the failure is counted later and the advance goes on.
    """
    from durable_django.store import poison
    from tests.testapp.compositions import compensate_at_the_step

    with no_broker():
        run = compensate_at_the_step.start("poisoned", fail_times=0)
        (first,) = WorkItem.objects.filter(run=run).values_list("pk", flat=True)
        held = work_items.take(first)  # the step, leased to this "worker"
        assert held is not None
        WorkItem.objects.filter(pk=held.item_id).update(failures=poison.TRIES - 1)
        run.cancel()
        (advance,) = WorkItem.objects.filter(run=run, kind=WorkItem.Kind.ADVANCE).values_list("pk", flat=True)

        run_locked, failure_done = threading.Event(), threading.Event()
        lock_run = work_items.lock_run

        def held_after_locking(*args: Any, **kwargs: Any) -> Any:
            row = lock_run(*args, **kwargs)
            if threading.current_thread().name == "advance":
                run_locked.set()
                failure_done.wait(3)  # the failure is recorded meanwhile, or waits for this lock
            return row

        monkeypatch.setattr(work_items, "lock_run", held_after_locking)
        errors: list[BaseException] = []
        claims: list[Any] = []
        advancer = in_thread(lambda: claims.append(work_items.take(advance)), errors, name="advance")
        assert run_locked.wait(10)
        began = time.monotonic()
        failing = in_thread(
            lambda: (
                poison.step_report_failed("default", held.item_id, held.token, run.pk, RuntimeError("bug")),
                failure_done.set(),
            ),
            errors,
        )
        failing.join(30)
        waited = time.monotonic() - began
        advancer.join(30)
        assert not errors, f"the two transactions failed: {errors!r}"
        assert waited < 2, "recording the failure waited for the run the advance holds"
        (compensation,) = claims  # the advance leased the compensation's step to this "worker": give it back
        if compensation is not None:
            work_items.release(compensation)
        run_until_idle()
    run.refresh_from_db()
    assert run.status == WorkflowRun.Status.CANCELLED, run.error
    assert Counter.objects.filter(name="poisoned:compensated", value=1).exists()
