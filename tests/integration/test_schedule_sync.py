"""Schedules declared in code become rows, idempotently; one removed from code stops firing, visibly."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command

import durable_django as durable
from durable_django.core.schedules import build
from durable_django.models import Schedule
from durable_django.store.schedule_sync import sync
from durable_django.testing import pass_time
from tests.testapp.workflows import echo_workflow

from .schedules import tick_ids

pytestmark = pytest.mark.django_db
Source = Schedule.Source


def nightly(**changes):
    options = {"cron": "0 2 * * *", "timezone": "Europe/Paris", "args": [1], **changes}
    return build("nightly", echo_workflow, **options)


def test_a_declared_schedule_becomes_a_row_that_fires_from_its_first_tick_after_now():
    report = sync([nightly()])
    assert report.created == ["nightly"]
    row = Schedule.objects.get(name="nightly")
    assert (row.source, row.workflow_name, row.cron, row.timezone) == (
        Source.CODE,
        "tests.echo",
        "0 2 * * *",
        "Europe/Paris",
    )
    assert row.next_tick_at is not None and row.fire_at == row.next_tick_at
    assert row.next_tick_at.astimezone(ZoneInfo("Europe/Paris")).hour in (2, 3)


def test_syncing_again_writes_nothing_and_keeps_the_next_tick():
    sync([nightly()])
    before = Schedule.objects.get(name="nightly")
    report = sync([nightly()])
    assert (report.created, report.updated, report.unchanged) == ([], [], ["nightly"])
    after = Schedule.objects.get(name="nightly")
    assert (after.next_tick_at, after.fire_at, after.updated_at) == (
        before.next_tick_at,
        before.fire_at,
        before.updated_at,
    )


def test_changed_arguments_keep_the_next_tick_and_a_changed_cron_counts_again_from_now():
    sync([nightly()])
    first = Schedule.objects.get(name="nightly").next_tick_at
    assert sync([nightly(args=[2])]).updated == ["nightly"]
    row = Schedule.objects.get(name="nightly")
    assert (row.args_json, row.next_tick_at) == ('{"args":[2],"kwargs":{}}', first)
    sync([nightly(args=[2], cron="0 3 * * *")])
    row.refresh_from_db()
    assert row.cron == "0 3 * * *" and row.next_tick_at != first


def test_a_schedule_removed_from_code_stops_firing_says_so_and_comes_back_when_declared_again():
    hourly = build("hourly-code", echo_workflow, every=timedelta(hours=1), args=[1])
    sync([hourly])
    report = sync([])
    assert report.missing == ["hourly-code"]
    row = Schedule.objects.get(name="hourly-code")
    assert row.missing_from_code and "no longer declared in code" in row.note
    pass_time(timedelta(hours=3))
    assert tick_ids("hourly-code") == [], "a schedule gone from code kept firing"
    sync([hourly])
    row.refresh_from_db()
    assert not row.missing_from_code and row.note == ""
    pass_time(timedelta(hours=1))
    assert len(tick_ids("hourly-code")) == 1, "the ticks missed while it was gone were caught up, or none fired"


def test_a_pause_made_in_the_admin_survives_a_sync():
    sync([nightly()])
    Schedule.objects.get(name="nightly").pause()
    sync([nightly(args=[3])])
    assert Schedule.objects.get(name="nightly").paused


def test_admin_made_rows_are_left_alone_unless_code_declares_their_name():
    Schedule.objects.create(name="by-hand", workflow_name="tests.echo", every=timedelta(hours=1))
    sync([nightly()])
    assert Schedule.objects.get(name="by-hand").source == Source.ADMIN
    Schedule.objects.create(name="taken", workflow_name="tests.echo", every=timedelta(hours=1))
    sync([nightly(), build("taken", echo_workflow, every=timedelta(hours=2), args=[1])])
    taken = Schedule.objects.get(name="taken")
    assert (taken.source, taken.every) == (Source.CODE, timedelta(hours=2))


def test_the_management_command_syncs_and_lists(capsys):
    durable.schedule("cmd-nightly", echo_workflow, cron="0 2 * * *", args=[1])
    try:
        call_command("durable_schedules", "--sync")
    finally:
        from durable_django.core.schedules import forget

        forget("cmd-nightly")
    out = capsys.readouterr().out
    assert "created: cmd-nightly" in out
    assert "cmd-nightly" in out and "At 02:00 every day (UTC)" in out and "tests.echo" in out
    assert Schedule.objects.filter(name="cmd-nightly", source=Source.CODE).exists()


def test_the_management_command_pauses_resumes_and_triggers_by_name(capsys):
    sync([nightly()])
    call_command("durable_schedules", "--pause", "nightly")
    assert Schedule.objects.get(name="nightly").paused
    call_command("durable_schedules", "--resume", "nightly")
    assert not Schedule.objects.get(name="nightly").paused
    call_command("durable_schedules", "--trigger", "nightly")
    out = capsys.readouterr().out
    assert "paused nightly" in out and "resumed nightly" in out and "started nightly@manual-" in out
    with pytest.raises(CommandError, match="no schedule is named 'nightley'"):
        call_command("durable_schedules", "--pause", "nightley")
