"""Schedules fired in the test's process: ticks in order and never early, overlap, catch-up, jitter, DST."""

from __future__ import annotations

from datetime import timedelta

import pytest

import durable_django as durable
from durable_django.core.cadence import jitter_for
from durable_django.models import Schedule, WorkflowRun
from durable_django.store import schedules
from durable_django.store.clock import database_now
from durable_django.testing import pass_time, run_until_idle, send_signal

from .schedules import make, start_at, tick_ids, tick_runs, utc

pytestmark = pytest.mark.django_db
Status = WorkflowRun.Status


def seconds_until_due(row: Schedule) -> float:
    row.refresh_from_db()
    return (row.fire_at - database_now("default")).total_seconds()


def test_a_new_schedule_waits_for_its_first_tick_after_now():
    row = make("hourly", every=timedelta(hours=1))
    now = database_now("default")
    assert now < row.next_tick_at <= now + timedelta(hours=1)
    assert row.next_tick_at.minute == row.next_tick_at.second == 0, "intervals are aligned to the epoch"
    assert schedules.sweep() == 0
    assert tick_ids("hourly") == []


def test_a_row_written_without_its_timing_gets_its_first_tick_at_the_next_sweep():
    row = Schedule.objects.create(name="orm-made", workflow_name="tests.echo", every=timedelta(hours=1))
    assert row.fire_at is None
    assert schedules.sweep() == 0
    row.refresh_from_db()
    assert row.next_tick_at > database_now("default") and row.fire_at == row.next_tick_at
    pass_time(timedelta(hours=1))
    assert len(tick_ids("orm-made")) == 1


def test_ticks_fire_in_order_each_once_and_never_before_their_time():
    row = make("hourly", every=timedelta(hours=1))
    first = row.next_tick_at
    pass_time(timedelta(seconds=seconds_until_due(row) - 1))
    assert tick_ids("hourly") == [], "a tick fired before its time"
    pass_time(timedelta(seconds=2))
    assert tick_ids("hourly") == [f"hourly@{first:%Y-%m-%dT%H:%M:%SZ}"]
    pass_time(timedelta(hours=3))
    expected = [f"hourly@{first + timedelta(hours=hour):%Y-%m-%dT%H:%M:%SZ}" for hour in range(4)]
    assert tick_ids("hourly") == expected
    assert [run.status for run in tick_runs("hourly")] == [Status.COMPLETED] * 4
    assert [run.input_json for run in tick_runs("hourly")] == ['{"args":[1],"kwargs":{}}'] * 4


def test_a_tick_starts_one_run_however_often_the_sweep_runs():
    row = start_at(make("often", every=timedelta(minutes=5)), utc(2030, 1, 1, 12))
    pass_time(timedelta(seconds=2))
    for _ in range(5):
        schedules.sweep()
    assert tick_ids("often") == ["often@2030-01-01T12:00:00Z"]
    row.refresh_from_db()
    assert row.next_tick_at == utc(2030, 1, 1, 12, 5)


def test_after_a_downtime_only_the_latest_tick_fires_by_default():
    row = start_at(make("catchup-1", every=timedelta(hours=1)), utc(2030, 1, 1, 0))
    Schedule.objects.filter(pk=row.pk).update(fire_at=database_now("default") - timedelta(hours=5))  # 5 h down
    schedules.sweep()
    assert tick_ids("catchup-1") == ["catchup-1@2030-01-01T05:00:00Z"]
    row.refresh_from_db()
    assert "ticks from 2030-01-01 00:00:00 UTC on were missed and not fired (catch_up=1" in row.note
    assert row.next_tick_at == utc(2030, 1, 1, 6)


def test_after_a_downtime_up_to_catch_up_missed_ticks_fire_in_order():
    row = start_at(make("catchup-3", every=timedelta(hours=1), catch_up=3, overlap="allow"), utc(2030, 1, 1, 0))
    Schedule.objects.filter(pk=row.pk).update(fire_at=database_now("default") - timedelta(hours=5))
    schedules.sweep()
    assert tick_ids("catchup-3") == [
        "catchup-3@2030-01-01T03:00:00Z",
        "catchup-3@2030-01-01T04:00:00Z",
        "catchup-3@2030-01-01T05:00:00Z",
    ]
    row.refresh_from_db()
    assert row.last_run.workflow_id == "catchup-3@2030-01-01T05:00:00Z"


def test_missed_ticks_caught_up_together_overlap_so_skip_starts_the_oldest_only():
    row = start_at(make("catchup-skip", every=timedelta(hours=1), catch_up=3), utc(2030, 1, 1, 0))
    Schedule.objects.filter(pk=row.pk).update(fire_at=database_now("default") - timedelta(hours=5))
    schedules.sweep()
    assert tick_ids("catchup-skip") == ["catchup-skip@2030-01-01T03:00:00Z"]
    row.refresh_from_db()
    assert row.note.count("skipped catchup-skip@") == 2


def test_jitter_delays_each_tick_by_its_own_offset_and_never_fires_it_early():
    spread = timedelta(minutes=30)
    row = make("jittered", every=timedelta(hours=1), jitter=spread)
    tick = row.next_tick_at
    offset = jitter_for("jittered", tick, spread)
    assert timedelta(0) < offset < spread
    assert row.fire_at == tick + offset
    pass_time(timedelta(seconds=seconds_until_due(row) - 1))
    assert tick_ids("jittered") == [], "fired before its jitter passed"
    pass_time(timedelta(seconds=2))
    assert tick_ids("jittered") == [f"jittered@{tick:%Y-%m-%dT%H:%M:%SZ}"]
    row.refresh_from_db()
    assert row.next_tick_at == tick + timedelta(hours=1)
    expected = timedelta(hours=1) - offset + jitter_for("jittered", row.next_tick_at, spread)
    assert abs((row.fire_at - database_now("default") - expected).total_seconds()) < 5


def test_overlap_skip_starts_nothing_while_the_previous_run_is_live():
    make("skipper", "tests.collect", args=[1], every=timedelta(hours=1))
    pass_time(timedelta(hours=3))
    (first,) = tick_runs("skipper")
    assert first.status == Status.WAITING
    assert "is still waiting" in Schedule.objects.get(name="skipper").note
    send_signal(first, "item", "done")
    pass_time(timedelta(hours=1))
    assert len(tick_runs("skipper")) == 2, "the next tick after the run ended did not start"


def test_overlap_allow_starts_runs_side_by_side():
    make("allower", "tests.collect", args=[1], every=timedelta(hours=1), overlap="allow")
    pass_time(timedelta(hours=3))
    assert [run.status for run in tick_runs("allower")] == [Status.WAITING] * 3


def test_overlap_cancel_previous_cancels_the_live_run_and_starts_the_new_one():
    make("canceller", "tests.collect", args=[1], every=timedelta(hours=1), overlap="cancel_previous")
    pass_time(timedelta(hours=2))
    older, newer = tick_runs("canceller")
    assert (older.status, newer.status) == (Status.CANCELLED, Status.WAITING)
    assert "asked the previous run" in Schedule.objects.get(name="canceller").note


def test_a_paused_schedule_fires_nothing_and_resumes_from_the_next_tick_after_now():
    row = make("pausable", every=timedelta(hours=1))
    row.pause()
    pass_time(timedelta(hours=3))
    assert tick_ids("pausable") == []
    row.resume()
    row.refresh_from_db()
    assert row.next_tick_at > database_now("default"), "the ticks of the pause were caught up"
    pass_time(timedelta(hours=1))
    assert len(tick_ids("pausable")) == 1


def test_trigger_starts_a_run_now_and_leaves_the_ticks_alone():
    row = make("manual", every=timedelta(hours=1))
    next_tick = row.next_tick_at
    run = row.trigger()
    assert run is not None and run.workflow_id.startswith("manual@manual-")
    run_until_idle()
    run.refresh_from_db()
    assert run.status == Status.COMPLETED
    row.refresh_from_db()
    assert (row.next_tick_at, row.last_run_id) == (next_tick, run.pk)


def test_trigger_obeys_the_overlap_policy():
    row = make("manual-skip", "tests.collect", args=[1], every=timedelta(hours=1))
    assert row.trigger() is not None
    assert row.trigger() is None
    assert "still" in row.note


def test_a_run_of_a_tick_that_exists_already_is_not_started_again(caplog):
    row = start_at(make("again", every=timedelta(hours=1)), utc(2030, 1, 1, 0))
    # What a schedule restored from a backup (its tick fired since) would find.
    run = durable.WorkflowRun.objects.create(
        workflow_id="again@2030-01-01T00:00:00Z", workflow_name="tests.echo", input_json='{"args":[1],"kwargs":{}}'
    )
    pass_time(timedelta(seconds=2))
    assert tick_ids("again") == ["again@2030-01-01T00:00:00Z"]
    row.refresh_from_db()
    assert row.last_run_id == run.pk
    assert "existed already" in caplog.text


def test_dst_a_0230_paris_schedule_fires_at_0300_on_spring_forward_and_once_on_fall_back():
    spring = start_at(make("paris-spring", cron="30 2 * * *", timezone="Europe/Paris"), utc(2027, 3, 27, 1, 30))
    pass_time(timedelta(days=2, hours=12))
    assert tick_ids("paris-spring") == [
        "paris-spring@2027-03-27T01:30:00Z",  # 02:30 CET
        "paris-spring@2027-03-28T01:00:00Z",  # no 02:30 that day: 03:00 CEST, right after the jump
        "paris-spring@2027-03-29T00:30:00Z",  # 02:30 CEST
    ]
    spring.pause()
    start_at(make("paris-fall", cron="30 2 * * *", timezone="Europe/Paris"), utc(2027, 10, 30, 0, 30))
    pass_time(timedelta(days=2, hours=12))
    assert tick_ids("paris-fall") == [
        "paris-fall@2027-10-30T00:30:00Z",  # 02:30 CEST
        "paris-fall@2027-10-31T00:30:00Z",  # the first of the two 02:30s; the second (01:30Z) does not fire
        "paris-fall@2027-11-01T01:30:00Z",  # 02:30 CET
    ]


def test_a_row_made_invalid_behind_the_forms_back_pauses_itself_visibly():
    row = make("broken", every=timedelta(hours=1))
    Schedule.objects.filter(pk=row.pk).update(every=None, cron="61 * * * *", fire_at=database_now("default"))
    assert schedules.sweep() == 0
    row.refresh_from_db()
    assert row.paused and "paused: schedule" not in row.note and "Bad minute" in row.note


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_sweeper_skips_a_schedule_another_sweeper_holds_and_finds_it_fired_after_its_commit():
    import threading
    import time

    from django.db import connections, transaction

    row = start_at(make("held", every=timedelta(hours=1)), utc(2030, 1, 1, 0), due_in=timedelta(0))
    locked, release, done = threading.Event(), threading.Event(), threading.Event()

    def other_sweeper() -> None:  # holds the row as a sweeper mid-transaction does, then fires it
        try:
            with transaction.atomic():
                Schedule.objects.select_for_update().get(pk=row.pk)
                locked.set()
                release.wait(timeout=10)
                schedules._fire("default", Schedule.objects.get(pk=row.pk), database_now("default"))
        finally:
            connections.close_all()
            done.set()

    thread = threading.Thread(target=other_sweeper)
    thread.start()
    try:
        assert locked.wait(timeout=10)
        began = time.monotonic()
        assert schedules.sweep() == 0, "a sweeper fired a schedule another one holds"
        assert time.monotonic() - began < 3, "a sweeper waited for another one's lock instead of skipping the row"
    finally:
        release.set()
        thread.join(timeout=10)
    assert done.is_set()
    assert schedules.sweep() == 0, "the tick fired again after the other sweeper's commit"
    assert tick_ids("held") == ["held@2030-01-01T00:00:00Z"]


def test_a_tick_of_a_workflow_no_code_has_starts_a_run_that_blocks_visibly():
    make("ghost", "tests.no_such_workflow", every=timedelta(hours=1))
    pass_time(timedelta(hours=1))
    (run,) = tick_runs("ghost")
    assert run.status == Status.BLOCKED
    assert run.error["type"] == "durable_django.exceptions.WorkflowNotRegistered"
