"""On PostgreSQL a step that follows a step costs one statement, and every other case still works."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.store import first_advance, work_items
from durable_django.testing import pass_time, run_until_idle
from durable_django.worker import runner
from tests.testapp.models import Counter
from tests.testapp.workflows import bumps, chain, collect, nap, stages

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_messages")]


def run_here(run: WorkflowRun) -> WorkflowRun:
    """Work the run's first item in this process, inline to the end; return it fresh."""
    runner.work(WorkItem.objects.get(run=run).pk)
    run.refresh_from_db()
    return run


def test_each_step_after_the_first_is_one_statement():
    run = chain.start(10)
    item = WorkItem.objects.get(run=run).pk
    with CaptureQueriesContext(connection) as queries:
        runner.work(item)
    run.refresh_from_db()
    assert (run.status, run.result) == (WorkflowRun.Status.COMPLETED, 18)
    statements = [query["sql"].split(None, 1)[0] for query in queries.captured_queries]
    # Reading the item and the fresh run, the first advance in one statement, then one per step.
    assert statements == ["SELECT"] + ["WITH"] * 11, statements


def test_an_atomic_step_costs_a_statement_before_its_body_and_one_after():
    run = bumps.start(10, "atomic-fast")
    item = WorkItem.objects.get(run=run).pk
    with CaptureQueriesContext(connection) as queries:
        runner.work(item)
    run.refresh_from_db()
    assert (run.status, run.result) == (WorkflowRun.Status.COMPLETED, 10)
    assert Counter.objects.get(name="atomic-fast").value == 10
    ours = [query["sql"].split(None, 1)[0] for query in queries.captured_queries if "durable_django_" in query["sql"]]
    # Reading the item and the fresh run, the first advance in one statement; then each step locks
    # its run and fences its item in one statement before its body runs, and one records it and goes on.
    assert ours == ["SELECT", "WITH"] + ["WITH", "WITH"] * 10, ours


def _first_atomic_step(counter: str) -> tuple[WorkflowRun, work_items.Claim]:
    """A fresh ``bumps`` run advanced in this process: its first step claimed here, not yet run."""
    run = bumps.start(2, counter)
    held = work_items.take(WorkItem.objects.get(run=run).pk)
    assert held is not None and held.step == "tests.bump"
    return run, held


def test_an_atomic_step_whose_lease_a_newer_claim_holds_is_refused_before_its_body_runs():
    run, held = _first_atomic_step("atomic-stale")
    WorkItem.objects.filter(pk=held.item_id).update(token=held.token + 1)  # the sweeper gave the step to another
    ran = []
    with CaptureQueriesContext(connection) as queries:
        assert work_items.record_success(held, "", body=lambda: ran.append(1) or "1") is None
    assert ran == [], "the body ran without the lease"
    first = next(query["sql"] for query in queries.captured_queries if "durable_django_" in query["sql"])
    assert "FOR NO KEY UPDATE SKIP LOCKED" in first and "DELETE FROM" in first, "not the one-statement lock and fence"
    entry = HistoryEntry.objects.get(run=run, seq=held.seq)
    assert entry.status == HistoryEntry.Status.SCHEDULED
    assert WorkItem.objects.filter(pk=held.item_id, token=held.token + 1).exists(), "the newer claim keeps its item"


def test_an_atomic_step_whose_run_a_caller_holds_waits_and_its_body_does_not_run():
    run, held = _first_atomic_step("atomic-busy")
    holding, release = threading.Event(), threading.Event()

    def caller() -> None:  # another connection: a caller's open transaction holding the run (as run.cancel() does)
        with transaction.atomic():
            WorkflowRun.objects.select_for_update().filter(pk=run.pk).get()
            holding.set()
            release.wait(10)
        connections.close_all()

    thread = threading.Thread(target=caller)
    thread.start()
    ran = []
    try:
        assert holding.wait(10)
        with pytest.raises(work_items.RunBusy):
            work_items.record_success(held, "", body=lambda: ran.append(1) or "1")
    finally:
        release.set()
        thread.join(10)
    assert ran == []
    assert WorkItem.objects.filter(pk=held.item_id, token=held.token).exists(), "the step is still this worker's"
    assert work_items.record_success(held, "", body=lambda: ran.append(1) or "1") is not None  # the next step, inline
    assert ran == [1]


def test_a_fresh_runs_first_sleep_is_one_statement_and_its_timer_fires():
    run = nap.start(3600, "first-sleep")
    item = WorkItem.objects.get(run=run).pk
    with CaptureQueriesContext(connection) as queries:
        runner.work(item)
    assert [query["sql"].split(None, 1)[0] for query in queries.captured_queries] == ["SELECT", "WITH"]
    run.refresh_from_db()
    assert run.status == WorkflowRun.Status.WAITING and run.next_seq == 1
    sleep = HistoryEntry.objects.get(run=run)
    timer = WorkItem.objects.get(run=run)
    assert (sleep.kind, timer.kind, timer.seq, timer.dispatched_at) == ("sleep", "timer", 0, None)
    assert timer.available_at == sleep.fire_at
    assert 3599 < (sleep.fire_at - sleep.scheduled_at).total_seconds() <= 3600.001
    pass_time(timedelta(hours=1))
    run.refresh_from_db()
    assert (run.status, run.result) == (WorkflowRun.Status.COMPLETED, 1)


def test_a_fresh_run_whose_row_a_caller_holds_is_left_for_later_by_both_paths():
    run = chain.start(2)
    item = WorkItem.objects.get(run=run).pk
    holding, release = threading.Event(), threading.Event()

    def caller() -> None:  # another connection: a caller's open transaction holding the run
        with transaction.atomic():
            WorkflowRun.objects.select_for_update().filter(pk=run.pk).get()
            holding.set()
            release.wait(10)
        connections.close_all()

    thread = threading.Thread(target=caller)
    thread.start()
    try:
        assert holding.wait(10)
        assert work_items.take(item) is None
        run.refresh_from_db()
        assert (run.status, run.next_seq) == (WorkflowRun.Status.PENDING, 0)
        assert WorkItem.objects.filter(pk=item).exists(), "the advance stays for the retry"
    finally:
        release.set()
        thread.join(10)
    assert run_here(run).status == WorkflowRun.Status.COMPLETED


def test_a_first_advance_that_is_not_a_step_or_a_sleep_takes_the_general_way():
    run = run_here(collect.start(1, "go"))
    assert run.status == WorkflowRun.Status.WAITING
    assert HistoryEntry.objects.get(run=run).kind == "signal"


def test_states_and_patch_markers_between_steps_take_the_general_way_and_are_kept():
    run = run_here(stages.start())
    assert (run.status, run.result, run.state) == (WorkflowRun.Status.COMPLETED, 8, "between")
    kinds = list(HistoryEntry.objects.filter(run=run).values_list("kind", flat=True))
    assert kinds == ["step", "state", "step", "patched", "step"]


def test_the_fast_path_can_be_turned_off(settings):
    settings.DURABLE_FAST_PATH = False
    run = chain.start(3)
    with CaptureQueriesContext(connection) as queries:
        run = run_here(run)
    assert (run.status, run.result) == (WorkflowRun.Status.COMPLETED, 3)
    assert not any(query["sql"].startswith("WITH") for query in queries.captured_queries)


def test_fresh_runs_started_together_take_their_first_advances_in_one_commit():
    sleepers = nap.start_many([(3600, "together")] * 10)
    chains = chain.start_many([(2,)] * 5)
    waiters = collect.start_many([(1, "go")] * 2)  # a signal wait first: the general way
    items = list(WorkItem.objects.filter(kind=WorkItem.Kind.ADVANCE).values_list("pk", flat=True))
    with CaptureQueriesContext(connection) as queries:
        left = first_advance.advance_many("default", items)
    statements = [query["sql"].split(None, 1)[0] for query in queries.captured_queries]
    assert statements.count("WITH") == 15 and statements.count("COMMIT") == 1, statements
    assert sorted(left) == sorted(WorkItem.objects.filter(run__in=waiters).values_list("pk", flat=True))
    assert (
        WorkflowRun.objects.filter(pk__in=[run.pk for run in sleepers], status=WorkflowRun.Status.WAITING).count() == 10
    )
    step_items = WorkItem.objects.filter(run__in=chains, kind=WorkItem.Kind.STEP)
    assert step_items.count() == 5 and not step_items.filter(lease_expires_at__isnull=False).exists(), "none inline"
    run_until_idle()
    assert {run.status for run in WorkflowRun.objects.filter(pk__in=[run.pk for run in chains])} == {"completed"}
    assert {run.status for run in WorkflowRun.objects.filter(pk__in=[run.pk for run in waiters])} == {"waiting"}


def test_a_run_whose_first_request_is_a_state_keeps_it_when_the_one_statement_path_declines():
    from tests.conformance.compare import report
    from tests.conformance.inline import check

    # Found by the generated programs: the declined generator, already past its set_state, was
    # kept for the general way, which then ended the run without the state.
    program = {"body": [{"op": "state", "id": 1}], "max_gen": 0}
    events = [{"ev": "time", "seconds": 5184000}]
    problems, _ = check(program, events)
    assert not problems, report(program, events, problems)


# lifecycle.finish() drops every work item of the run it ends; the one-statement completion
# deleted only the step's own, so a run started with using(timeout=...) that ended right
# after a step kept its deadline's timer until the deadline (found by the chaos harness's
# sagas with a 300 s deadline: work_items_left). Such a run now ends the general way.
def test_a_run_with_a_deadline_that_ends_right_after_a_step_leaves_no_work_item():
    run = chain.using(timeout=timedelta(hours=1)).start(3)
    assert WorkItem.objects.filter(run=run, kind=WorkItem.Kind.TIMER).count() == 1, "the deadline's timer"
    runner.work(WorkItem.objects.get(run=run, kind=WorkItem.Kind.ADVANCE).pk)  # inline to the end
    run.refresh_from_db()
    assert (run.status, run.result) == (WorkflowRun.Status.COMPLETED, 3)
    left = list(WorkItem.objects.filter(run=run).values_list("kind", "seq", "available_at"))
    assert left == [], f"the finished run keeps {left}"
