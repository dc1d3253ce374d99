"""Due timers go to the workers by the batch, and fire once each, never early, whatever dies mid-batch."""

from __future__ import annotations

import random
import time
from datetime import timedelta

import pytest
from django.db import transaction

from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.store import outbox, timers
from durable_django.store.clock import Now
from durable_django.store.leases import db_now_plus
from durable_django.testing import advance_time, no_broker
from durable_django.worker import sweeper
from tests.testapp.models import Counter
from tests.testapp.workflows import drowsy, nap

from .waiting import wait_finished, wait_for

WAITING = WorkflowRun.Status.WAITING


def asleep(runs: list[WorkflowRun]) -> bool:
    return WorkflowRun.objects.filter(pk__in=[run.pk for run in runs], status=WAITING).count() == len(runs)


def assert_fired_once_never_early(runs: list[WorkflowRun], counter: str) -> None:
    assert {run.status for run in runs} == {WorkflowRun.Status.COMPLETED}
    assert Counter.objects.get(name=counter).value == len(runs), "a step after a sleep ran twice, or never"
    sleeps = HistoryEntry.objects.filter(run__in=runs, kind="sleep")
    assert sleeps.count() == len(runs)
    assert not sleeps.exclude(status=HistoryEntry.Status.COMPLETED).exists()
    early = [entry.pk for entry in sleeps if entry.finished_at < entry.fire_at]
    assert not early, f"{len(early)} timer(s) fired before their time"
    assert not WorkItem.objects.filter(run__in=runs).exists()


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_sends_due_timers_by_the_batch_and_other_items_one_each(monkeypatch, settings):
    settings.DURABLE_FIRE_BATCH = 10
    batches: list[list[int]] = []
    singles: list[int] = []
    monkeypatch.setattr(outbox, "publish_timers", lambda ids, queue: batches.append(ids) or True)
    monkeypatch.setattr(outbox, "publish", lambda item_id, queue, countdown=None: singles.append(item_id) or True)
    with transaction.atomic():
        runs = [nap.start(3600, "batched") for _ in range(50)]
    WorkItem.objects.filter(run__in=runs).delete()
    for run in runs:
        WorkItem.objects.create(run=run, kind=WorkItem.Kind.TIMER, seq=0, available_at=db_now_plus(-1))
    WorkItem.objects.create(run=runs[0], kind=WorkItem.Kind.ADVANCE)  # never sent, not a timer
    WorkItem.objects.create(run=runs[1], kind=WorkItem.Kind.TIMER, seq=0, available_at=db_now_plus(3600))  # not due

    singles.clear()  # the starts' own wake-ups
    assert sweeper.send_due() == 51
    assert len(singles) == 1
    assert sorted(len(batch) for batch in batches) == [10] * 5, "spread over several messages, at most FIRE_BATCH"
    sent = {pk for batch in batches for pk in batch}
    assert len(sent) == 50 and not WorkItem.objects.filter(pk__in=sent, dispatched_at__isnull=True).exists()
    assert sweeper.send_due() == 0, "a stamped item is not sent again at once"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("due", "sizes"), [(30, [30]), (51, [25, 26]), (120, [40, 40, 40])])
def test_a_sweep_sends_its_due_timers_in_as_few_messages_as_the_batch_size_allows(monkeypatch, settings, due, sizes):
    # A message costs a transaction and its statements whatever its size: 25 timers due together
    # spread over four messages cost the worker about twice the CPU of one message of 25.
    settings.DURABLE_FIRE_BATCH = 50
    batches: list[list[int]] = []
    monkeypatch.setattr(outbox, "publish_timers", lambda ids, queue: batches.append(ids) or True)
    with no_broker(), transaction.atomic():
        runs = [nap.start(3600, "few-messages") for _ in range(due)]
    WorkItem.objects.filter(run__in=runs).delete()
    WorkItem.objects.bulk_create(
        WorkItem(run=run, kind=WorkItem.Kind.TIMER, seq=0, available_at=db_now_plus(-1)) for run in runs
    )
    assert sweeper.send_due() == due
    assert sorted(len(batch) for batch in batches) == sizes
    assert len({pk for batch in batches for pk in batch}) == due


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_sleeps_until_the_next_timer_is_due_by_the_database_clock(settings):
    settings.DURABLE_SWEEP_INTERVAL = 30
    settings.DURABLE_COUNTDOWN_HINT_MAX = 10  # shorter waits travel as a countdown: the sweeper looks this often
    using = "default"
    assert timers.due_in(using) is None
    full_at = time.monotonic() + 30
    assert sweeper.Sweeper._next_wait(full_at, sent_at=-1) == pytest.approx(10, abs=0.5), "no timer: look again later"

    run = nap.start(3600, "due")
    WorkItem.objects.filter(run=run).delete()
    WorkItem.objects.create(run=run, kind=WorkItem.Kind.TIMER, seq=0, available_at=db_now_plus(7))
    WorkItem.objects.create(run=run, kind=WorkItem.Kind.TIMER, seq=1, available_at=db_now_plus(3), dispatched_at=Now())
    assert timers.due_in(using) == pytest.approx(7, abs=0.5), "a timer whose message is on its way is not waited for"
    assert sweeper.Sweeper._next_wait(full_at, sent_at=-1) == pytest.approx(7, abs=0.5)

    WorkItem.objects.create(run=run, kind=WorkItem.Kind.TIMER, seq=2, available_at=db_now_plus(-2))
    assert timers.due_in(using) < 0
    gap = sweeper.Sweeper._next_wait(full_at, sent_at=time.monotonic())
    assert 0 < gap <= sweeper.FIRE_GAP, "already due: look again after the gap, not at once in a loop"


@pytest.mark.broker
def test_a_thousand_timers_due_together_fire_once_each_by_the_batch_never_early(worker):
    with transaction.atomic():
        runs = [nap.start(3600, "together") for _ in range(1000)]
    wait_for(lambda: asleep(runs), timeout=180, what="1,000 runs asleep")
    advance_time(timedelta(hours=1))
    runs = wait_finished(runs, timeout=180)
    assert_fired_once_never_early(runs, "together")
    assert "durable_django.fire[" in worker.logs(), "the timers were not sent by the batch"


@pytest.mark.broker
def test_a_worker_that_dies_in_the_middle_of_a_batch_leaves_every_timer_to_fire_once_never_early(worker, tmp_path):
    ticket = tmp_path / "crash-ticket"
    ticket.write_text("timers.mid_batch")
    worker.env.update(DURABLE_CRASH_AT="timers.mid_batch", DURABLE_CRASH_FILE=str(ticket))
    worker.kill()
    worker.start()
    with transaction.atomic():
        runs = [nap.start(3600, "mid-batch") for _ in range(200)]
    wait_for(lambda: asleep(runs), timeout=120, what="200 runs asleep")
    advance_time(timedelta(hours=1))
    wait_for(lambda: not ticket.exists(), timeout=30, what="a pool process to die in the middle of a batch")
    runs = wait_finished(runs, timeout=120)
    assert_fired_once_never_early(runs, "mid-batch")


@pytest.mark.broker
def test_pool_processes_sigkilled_while_batches_fire_leave_every_timer_to_fire_once_never_early(worker):
    random.seed(11)
    with transaction.atomic():
        runs = [drowsy.start(3600, "sigkilled", 0.02) for _ in range(400)]
    wait_for(lambda: asleep(runs), timeout=120, what="400 runs asleep")
    advance_time(timedelta(hours=1))  # 400 due at once: batches of 50, each about a second's work
    kills = 0
    deadline = time.monotonic() + 30
    while kills < 3 and time.monotonic() < deadline:
        time.sleep(random.uniform(0.3, 0.8))
        done = WorkflowRun.objects.filter(pk__in=[run.pk for run in runs], status=WorkflowRun.Status.COMPLETED)
        if done.count() == len(runs):
            break
        children = worker.children()
        kills += bool(children) and worker.kill_child(random.choice(children))
    assert kills >= 1, "no pool process was killed while the batches fired"
    runs = wait_finished(runs, timeout=180)
    assert_fired_once_never_early(runs, "sigkilled")


@pytest.mark.django_db(transaction=True)
def test_a_batch_ends_each_run_as_firing_its_timers_one_by_one_does(no_messages):
    from durable_django.testing import pass_time, run_until_idle
    from tests.testapp.workflows import first_of, parent_of_sleeper, wait_or_timeout

    def start_all(tag: str) -> list[WorkflowRun]:
        return [
            wait_or_timeout.start(1),  # returns as it wakes: completed with the batch's others
            nap.start(3600, f"{tag}-nap"),  # a step after the sleep
            first_of.start(1),  # the sleep wins an any_of
            parent_of_sleeper.start(f"{tag}-child"),  # a child's sleep: its end wakes its parent
        ]

    batched, alone = start_all("batched"), start_all("alone")
    run_until_idle()
    due = WorkItem.objects.filter(kind=WorkItem.Kind.TIMER)
    assert due.count() == 8
    HistoryEntry.objects.filter(fire_at__isnull=False).update(fire_at=Now())
    due.update(available_at=Now(), dispatched_at=Now())
    ids = list(due.filter(run__in=batched).values_list("pk", flat=True))
    ids += list(due.filter(run__parent__in=batched).values_list("pk", flat=True))
    assert timers.fire_batch(ids) == 4
    pass_time(timedelta(seconds=1))  # the others, one by one; then the steps after the sleeps
    mine_all = WorkflowRun.objects.filter(pk__in=[run.pk for run in batched]).order_by("created_at")
    theirs_all = WorkflowRun.objects.filter(pk__in=[run.pk for run in alone]).order_by("created_at")
    for mine, theirs in zip(mine_all, theirs_all, strict=True):
        assert (mine.status, mine.workflow_name) == (WorkflowRun.Status.COMPLETED, theirs.workflow_name)
        assert mine.result_json.replace("batched", "alone") == theirs.result_json
        assert mine.next_seq == theirs.next_seq
    assert Counter.objects.get(name="batched-nap").value == 1


@pytest.mark.django_db(transaction=True)
def test_a_batch_honours_a_cancel_a_deadline_and_an_update_that_met_their_timers():
    # Each timer is taken by a batch just as something else lands on its run: the batch must
    # decide as the one-by-one path does (the cancel wins, the deadline cancels, the update is taken).
    from durable_django import updates
    from durable_django.testing import run_until_idle
    from tests.testapp.conversations import coupon_checkout, deadline_loop

    with no_broker():
        sleeper = nap.start(3600, "batch-cancel")
        deadlined = deadline_loop.start(3)
        coupons = coupon_checkout.start(100)
        run_until_idle()
        sleeper.cancel()  # committed before its timer is taken
        updates.send(coupons, "apply_coupon", "WELCOME")  # in time: the wait takes it
        due = WorkItem.objects.filter(kind=WorkItem.Kind.TIMER, run__in=[sleeper, deadlined, coupons])
        due.filter(run=sleeper).update(available_at=db_now_plus(-1))
        due.filter(run=deadlined, seq__isnull=True).update(available_at=db_now_plus(-1))
        due.filter(run=coupons).update(available_at=db_now_plus(-1))
        items = list(due.filter(available_at__lte=Now()).values_list("pk", flat=True))
        assert len(items) == 3
        timers.fire_batch(items)
        run_until_idle()
    sleeper, deadlined, coupons = (WorkflowRun.objects.get(pk=run.pk) for run in (sleeper, deadlined, coupons))
    assert sleeper.status == WorkflowRun.Status.CANCELLED, "the timer fired over a cancel committed before it"
    assert not Counter.objects.filter(name="batch-cancel").exists()
    assert deadlined.status == WorkflowRun.Status.CANCELLED and "deadline" in (deadlined.error_json or "").lower()
    assert coupons.status == WorkflowRun.Status.WAITING, "the update that came in time was timed out"
    assert coupons.state == {"total": 90, "applied": ["WELCOME"]}


@pytest.mark.django_db(transaction=True)
def test_a_batch_of_deadlines_alone_touches_no_other_runs_timers():
    from durable_django.testing import run_until_idle
    from tests.testapp.conversations import deadline_loop

    with no_broker():
        sleeper = nap.start(3600, "batch-bystander")
        deadlined = deadline_loop.start(1)
        run_until_idle()
        deadline = WorkItem.objects.get(run=deadlined, kind=WorkItem.Kind.TIMER, seq__isnull=True)
        WorkItem.objects.filter(pk=deadline.pk).update(available_at=db_now_plus(-1))
        timers.fire_batch([deadline.pk])  # raised BatchFailed: an empty filter matched every pending entry
        run_until_idle()
    assert WorkflowRun.objects.get(pk=deadlined.pk).status == WorkflowRun.Status.CANCELLED
    assert WorkflowRun.objects.get(pk=sleeper.pk).status == WAITING
    assert HistoryEntry.objects.get(run=sleeper, kind="sleep").status != HistoryEntry.Status.COMPLETED
