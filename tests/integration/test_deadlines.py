"""Deadlines: ``timeout=`` raises ``DeadlineExceeded`` (a ``Cancelled``) at the current yield, so compensation runs."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable_django as durable
from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.testing import pass_time, run_workflow, send_signal
from tests.testapp.conversations import (
    deadline_child,
    deadline_loop,
    deadline_parent,
    deadline_refunds_by_child,
    deadline_renewal,
    deadline_saga,
)

from .waiting import wait_status

Status = WorkflowRun.Status
DEADLINE = "durable_django.exceptions.DeadlineExceeded"


def steps(run: WorkflowRun) -> list[tuple[str, str]]:
    return list(HistoryEntry.objects.filter(run=run).order_by("seq").values_list("kind", "status"))


@pytest.mark.django_db
def test_when_the_deadline_passes_deadline_exceeded_is_raised_at_the_yield_and_compensation_runs():
    run = run_workflow(deadline_saga, 7)
    pass_time(timedelta(minutes=59))
    run.refresh_from_db()
    assert run.status == Status.WAITING, "a deadline never fires early"
    pass_time(timedelta(minutes=2))
    run.refresh_from_db()
    assert (run.status, run.error["type"]) == (Status.CANCELLED, DEADLINE)
    assert steps(run) == [("step", "completed"), ("signal", "cancelled"), ("step", "completed")]


@pytest.mark.django_db
def test_a_cancel_before_the_deadline_is_the_reason_and_the_deadline_changes_nothing_after():
    run = run_workflow(deadline_saga, 7)
    run.cancel()
    pass_time(timedelta(hours=2))
    run.refresh_from_db()
    assert (run.status, run.result) == (Status.COMPLETED, "cancelled by hand")
    assert not WorkItem.objects.filter(run=run).exists(), "a finished run keeps no deadline timer"


@pytest.mark.django_db
def test_a_run_that_finishes_in_time_is_untouched_and_per_run_timeout_overrides_the_workflows():
    run = deadline_saga.using(timeout=timedelta(days=2)).start(3)
    pass_time(timedelta(hours=3))
    run = send_signal(run, "shipped")
    assert (run.status, run.result) == (Status.COMPLETED, "shipped")


@pytest.mark.django_db
@pytest.mark.parametrize("child_minutes,capped", [(600, True), (10, False)])
def test_a_child_inherits_a_deadline_no_later_than_its_parents(child_minutes, capped):
    parent = run_workflow(deadline_parent, child_minutes)
    child = WorkflowRun.objects.get(parent=parent)
    assert parent.deadline_at is not None and child.deadline_at is not None
    if capped:
        assert child.deadline_at == parent.deadline_at
    else:
        assert child.deadline_at < parent.deadline_at - timedelta(minutes=45)
        pass_time(timedelta(minutes=11))
        child.refresh_from_db()
        parent.refresh_from_db()
        assert (child.status, child.error["type"]) == (Status.CANCELLED, DEADLINE)
        assert (parent.status, parent.result) == (Status.COMPLETED, DEADLINE)


@pytest.mark.django_db
def test_the_deadline_spans_continue_as_new():
    run = run_workflow(deadline_loop, 0)
    run = send_signal(run, "next")
    assert run.generation == 1
    pass_time(timedelta(minutes=61))
    run.refresh_from_db()
    assert (run.status, run.generation, run.error["type"]) == (Status.CANCELLED, 1, DEADLINE)


@pytest.mark.django_db
def test_a_generation_that_continued_as_new_from_the_deadlines_compensation_has_no_deadline_nor_its_children():
    run = run_workflow(deadline_renewal, 0)
    pass_time(timedelta(minutes=61))
    run.refresh_from_db()
    assert (run.status, run.generation, run.deadline_at) == (Status.WAITING, 1, None)
    run = send_signal(run, "next")  # generation 2 starts a child, with no deadline to inherit
    child = WorkflowRun.objects.get(parent=run)
    assert (run.generation, child.deadline_at) == (2, None)
    pass_time(timedelta(hours=3))
    run.refresh_from_db()
    child.refresh_from_db()
    assert (run.status, child.status) == (Status.RUNNING, Status.WAITING), "no passed deadline came back"


@pytest.mark.django_db
def test_a_child_the_compensation_starts_after_the_deadline_runs_normally_without_inheriting_it():
    run = run_workflow(deadline_refunds_by_child, 21)
    pass_time(timedelta(minutes=61))
    run.refresh_from_db()
    child = WorkflowRun.objects.get(parent=run)
    assert (child.status, child.result, child.deadline_at) == (Status.COMPLETED, 42, None)
    assert (run.status, run.error["type"], run.state) == (Status.CANCELLED, DEADLINE, {"refunded": 42})


@pytest.mark.django_db
def test_a_blocked_run_whose_deadline_passed_gets_it_once_resumed():
    run = run_workflow(deadline_saga, 4)
    WorkflowRun.objects.filter(pk=run.pk).update(status=Status.BLOCKED)  # as a worker lacking its code leaves it
    pass_time(timedelta(minutes=61))
    run.refresh_from_db()
    assert (run.status, run.cancel_requested, run.deadline_exceeded) == (Status.BLOCKED, True, True)
    run.resume()
    pass_time(timedelta(seconds=1))
    run.refresh_from_db()
    assert (run.status, run.error["type"]) == (Status.CANCELLED, DEADLINE)
    assert steps(run) == [("step", "completed"), ("signal", "cancelled"), ("step", "completed")]


@pytest.mark.django_db
def test_a_deadline_now_or_in_the_past_is_refused_where_it_is_given():
    with pytest.raises(durable.InvalidRequest, match="a deadline now or in the past"):
        deadline_child.using(timeout=timedelta(seconds=-1))
    with pytest.raises(durable.InvalidRequest, match="a deadline now or in the past"):
        deadline_child.using(timeout=timedelta(0))
    with pytest.raises(durable.InvalidRequest, match=r"takes a datetime\.timedelta"):
        deadline_child.using(timeout=30)  # type: ignore[arg-type]
    with pytest.raises(durable.WorkflowDefinitionError, match="a deadline now or in the past"):
        durable.workflow(timeout=timedelta(minutes=-5))
    assert not WorkflowRun.objects.exists()


def test_on_a_real_worker_the_deadline_cancels_a_waiting_run_and_its_compensation_runs(worker):
    run = deadline_saga.using(timeout=timedelta(seconds=2)).start(5)
    wait_status(run, Status.WAITING, timeout=30)
    with pytest.raises(durable.DeadlineExceeded, match="its deadline passed"):
        run.wait(timeout=30)
    assert run.error["type"] == DEADLINE
    assert steps(run) == [("step", "completed"), ("signal", "cancelled"), ("step", "completed")]
