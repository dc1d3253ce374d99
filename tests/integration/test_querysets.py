"""The named queries mean what they say, by the database's clock."""

from __future__ import annotations

import pytest

from durable_django.models import HistoryEntry, Signal, WorkflowRun, WorkItem
from durable_django.store.querysets import db_now_plus

pytestmark = pytest.mark.django_db


def _run(workflow_id: str, status: str = WorkflowRun.Status.RUNNING) -> WorkflowRun:
    return WorkflowRun.objects.create(workflow_id=workflow_id, workflow_name="w", input_json="{}", status=status)


def test_work_items_are_ready_leased_or_expired_by_the_database_clock():
    run = _run("items")
    items = WorkItem.objects.filter(run=run)
    ready = WorkItem.objects.create(run=run, kind=WorkItem.Kind.ADVANCE)
    later = WorkItem.objects.create(run=run, kind=WorkItem.Kind.TIMER, available_at=db_now_plus(3600))
    leased = WorkItem.objects.create(run=run, kind=WorkItem.Kind.STEP, lease_expires_at=db_now_plus(60), token=1)
    expired = WorkItem.objects.create(run=run, kind=WorkItem.Kind.STEP, lease_expires_at=db_now_plus(-1), token=3)
    assert set(items.ready()) == {ready}
    assert set(items.expired()) == {expired}
    assert set(items.leased()) == {leased}
    assert set(items.claimable()) == {ready, expired}
    assert set(items.unleased()) == {ready, later}
    assert list(WorkItem.objects.held(expired.pk, 3)) == [expired]
    assert not WorkItem.objects.held(expired.pk, 2).exists()
    assert set(WorkItem.objects.of(run.pk).of_kind(WorkItem.Kind.STEP)) == {leased, expired}


def test_runs_are_live_or_finished_and_found_by_workflow_id():
    live = {_run(f"live-{status}", status) for status in WorkflowRun.LIVE}
    done = {_run(f"done-{status}", status) for status in WorkflowRun.FINISHED}
    blocked = _run("blocked", WorkflowRun.Status.BLOCKED)
    assert set(WorkflowRun.objects.live()) == live
    assert set(WorkflowRun.objects.finished()) == done
    assert WorkflowRun.objects.with_id("blocked").get() == blocked


def test_the_inbox_is_the_unconsumed_signals_oldest_first():
    run = _run("inbox")
    first = Signal.objects.create(run=run, name="a", payload_json="1")
    Signal.objects.create(run=run, name="a", payload_json="2", consumed_seq=0)
    other = Signal.objects.create(run=run, name="b", payload_json="3")
    last = Signal.objects.create(run=run, name="a", payload_json="4")
    assert list(Signal.objects.inbox(run.pk, "a")) == [first, last]
    assert list(Signal.objects.inbox(run.pk)) == [first, other, last]


def test_history_positions_leave_out_the_leaves_of_groups():
    run = _run("history")
    group = HistoryEntry.objects.create(run=run, seq=0, kind=HistoryEntry.Kind.ALL_OF, args_json="2")
    HistoryEntry.objects.create(run=run, seq=1, group_seq=0, kind=HistoryEntry.Kind.SLEEP, args_json="{}")
    wait = HistoryEntry.objects.create(
        run=run, seq=3, kind=HistoryEntry.Kind.SIGNAL, name="go", args_json="{}", fire_at=db_now_plus(5)
    )
    assert list(HistoryEntry.objects.of(run.pk).positions().order_by("seq")) == [group, wait]
    assert list(HistoryEntry.objects.at(run.pk, 3)) == [wait]
    assert list(HistoryEntry.objects.of(run.pk).timed()) == [wait]


def test_an_item_made_due_now_by_the_database_clock_is_due_at_once():
    """SQLite's ``Now()`` is text to the millisecond, while ``Now() + delta`` comes back with six
    decimals: compared as text, "12:00:00.123000" is later than "12:00:00.123", so an item made
    due now (a retry at once, a lease run out) was not due for up to a millisecond, and
    ``run_until_idle`` stopped short of it. (A time Python writes is due once the database's
    clock reaches it: never early, at most a millisecond late on SQLite.)"""
    run = _run("due-now")
    for _ in range(20):  # each write and read well within one millisecond, most times
        item = WorkItem.objects.create(run=run, kind=WorkItem.Kind.STEP, available_at=db_now_plus(0))
        assert list(WorkItem.objects.filter(pk=item.pk).claimable()) == [item]
        item.delete()


def test_history_in_its_default_order_is_read_without_joining_the_runs():
    """Ordered by ``run`` (the foreign key), Django orders by the run's own ordering: a join of
    every entry with its run (a hash join over all runs in a batch of due timers, 35 ms at 50,000)."""
    run = _run("history-order")
    sql = str(HistoryEntry.objects.filter(run_id=run.pk).query)
    assert WorkflowRun._meta.db_table not in sql, sql
    assert sql.endswith('ORDER BY "durable_django_historyentry"."run_id" ASC, "durable_django_historyentry"."seq" ASC')
