"""Schedules in the admin: the list, pause, resume, trigger, add, edit and delete, each behind a permission."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from durable_django.core.schedules import build
from durable_django.models import Schedule, WorkflowRun
from durable_django.store.clock import database_now
from durable_django.store.schedule_sync import sync
from durable_django.testing import run_until_idle
from tests.testapp.workflows import echo_workflow

pytestmark = [pytest.mark.django_db(transaction=True)]
LIST = "/admin/durable_django/schedule/"


def messages(response) -> list[str]:
    return re.findall(r'<li class="(?:success|error|warning)">(.*?)</li>', response.text, re.DOTALL)


@pytest.fixture
def operator(django_user_model):
    """A logged-in staff client with the schedule permissions named (``view`` always)."""
    made = 0

    def make(*codenames: str) -> Client:
        nonlocal made
        made += 1
        user = django_user_model.objects.create_user(username=f"ops{made}", password="pw", is_staff=True)
        wanted = ["view_schedule", "view_workflowrun", *codenames]
        user.user_permissions.set(
            Permission.objects.filter(content_type__app_label="durable_django", codename__in=wanted)
        )
        client = Client()
        client.force_login(user)
        return client

    return make


def hourly(name: str = "hourly", **fields) -> Schedule:
    from durable_django.store.schedules import reschedule

    row = Schedule.objects.create(name=name, workflow_name="tests.echo", args_json='{"args":[1],"kwargs":{}}', **fields)
    reschedule(row)
    row.refresh_from_db()
    return row


def act(client: Client, action: str, *rows: Schedule):
    data = {"action": action, "_selected_action": [row.pk for row in rows]}
    return client.post(LIST, data, follow=True)


def test_the_list_shows_when_each_schedule_fires_its_state_and_its_runs(operator):
    hourly(every=timedelta(hours=1))
    Schedule.objects.create(name="nightly", workflow_name="tests.echo", cron="0 2 * * *", timezone="Europe/Paris")
    Schedule.objects.filter(name="nightly").update(paused=True)
    page = operator().get(LIST).text
    assert "hourly" in page and "every 1:00:00" in page and "active" in page
    assert "At 02:00 every day (Europe/Paris)" in page and "paused" in page
    assert "/admin/durable_django/workflowrun/?q=hourly%40" in page


def test_pause_and_resume_need_the_pause_permission(operator):
    row = hourly(every=timedelta(hours=1))
    viewer = operator()
    assert "pause_schedules" not in viewer.get(LIST).text, "an action shown without its permission"
    act(viewer, "pause_schedules", row)
    row.refresh_from_db()
    assert not row.paused
    pauser = operator("pause_schedule")
    assert messages(act(pauser, "pause_schedules", row)) == ["Pause: hourly."]
    row.refresh_from_db()
    assert row.paused
    act(pauser, "resume_schedules", row)
    row.refresh_from_db()
    assert not row.paused and row.fire_at > database_now("default")


def test_trigger_needs_its_permission_and_starts_the_workflow_now(operator):
    row = hourly(every=timedelta(hours=1))
    assert "trigger_schedules" not in operator("pause_schedule").get(LIST).text
    done = act(operator("trigger_schedule"), "trigger_schedules", row)
    (message,) = messages(done)
    assert message.startswith("Trigger: hourly: started hourly@manual-")
    run_until_idle()
    run = WorkflowRun.objects.get(workflow_id__startswith="hourly@manual-")
    assert (run.status, run.result["doubled"]) == ("completed", 2)


def test_adding_a_schedule_checks_it_as_code_does_and_counts_its_ticks_from_now(operator):
    client = operator("add_schedule", "change_schedule")
    form = {
        "name": "reports",
        "workflow_name": "tests.echo",
        "args": "[7]",
        "kwargs": '{"note": "x"}',
        "cron": "0 25 * * *",
        "timezone": "Europe/Paris",
        "every": "",
        "overlap": "skip",
        "catch_up": "1",
        "jitter": "0",
    }
    refused = client.post(f"{LIST}add/", form)
    assert refused.status_code == 200 and "not a valid cron expression (Bad hour)" in refused.text
    form["timezone"] = "Europe/Pari"
    form["cron"] = "0 7 * * MON-FRI"
    assert "did you mean &#x27;Europe/Paris&#x27;?" in client.post(f"{LIST}add/", form).text
    form.update(timezone="Europe/Paris", workflow_name="tests.collect")
    assert "workflow &#x27;tests.collect&#x27; cannot be called with" in client.post(f"{LIST}add/", form).text
    form["workflow_name"] = "tests.echo"
    assert client.post(f"{LIST}add/", form).status_code == 302
    row = Schedule.objects.get(name="reports")
    assert (row.source, row.args_json) == (Schedule.Source.ADMIN, '{"args":[7],"kwargs":{"note":"x"}}')
    assert row.next_tick_at > database_now("default") and row.fire_at == row.next_tick_at


def test_editing_the_timing_counts_the_ticks_again_and_change_needs_its_permission(operator):
    row = hourly(every=timedelta(hours=1))
    form = {
        "name": "hourly", "workflow_name": "tests.echo", "args": "[1]", "kwargs": "{}", "cron": "", "timezone": "UTC",
        "every": "00:10:00", "overlap": "allow", "catch_up": "2", "jitter": "0",
    }  # fmt: skip
    assert operator().post(f"{LIST}{row.pk}/change/", form).status_code == 403
    assert operator("change_schedule").post(f"{LIST}{row.pk}/change/", form).status_code == 302
    row.refresh_from_db()
    assert (row.every, row.overlap, row.catch_up) == (timedelta(minutes=10), "allow", 2)
    assert row.next_tick_at.minute % 10 == 0 and row.next_tick_at - database_now("default") <= timedelta(minutes=10)


def test_a_schedule_declared_in_code_is_read_only_here_and_cannot_be_deleted(operator):
    sync([build("coded", echo_workflow, cron="0 2 * * *", args=[1])])
    row = Schedule.objects.get(name="coded")
    client = operator("change_schedule", "delete_schedule")
    page = client.get(f"{LIST}{row.pk}/change/").text
    assert 'name="cron"' not in page and 'name="paused"' in page, "the code's settings are editable"
    assert client.get(f"{LIST}{row.pk}/delete/").status_code == 403
    bulk = client.post(LIST, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"})
    assert bulk.status_code == 403
    assert Schedule.objects.filter(name="coded").exists()
    sync([])  # gone from code: now it may go
    assert client.post(f"{LIST}{row.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Schedule.objects.filter(name="coded").exists()
