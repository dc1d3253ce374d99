"""A run's page: its summary, its timeline of history, its locals, and what it redacts."""

from __future__ import annotations

import html as htmllib
import json
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from durable_django.models import HistoryEntry, WorkflowRun
from durable_django.testing import advance_time
from tests.testapp.workflows import chain, echo_workflow, inspectable, parent, repairable, secretive, tour

from .runs import page, settle, worked

pytestmark = [pytest.mark.django_db(transaction=True)]

SECRETS = ("hunter2", "tok-sekrit", "key-sekrit", "4111111111111111", "Bearer sekrit", "pin-sekrit")


def text(response) -> str:
    """The page's visible text, tags dropped and entities decoded, so assertions read like the screen."""
    assert response.status_code == 200, response.status_code
    main = response.text.split('id="content-main"', 1)[1]
    main = re.sub(r'</?span( class="durable-redacted")?>', "", main)
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", main)))


def test_the_page_shows_each_step_with_its_arguments_result_attempts_and_duration(staff):
    run = worked(echo_workflow, 21, workflow_id="echo-1", note="hi")
    shown = text(staff().get(page(run)))
    assert "completed tests.echo" in shown
    assert "#0 step tests.double (value=21) completed 1 attempt took" in shown
    assert "result 42" in shown
    assert 'Input (value=21, note="hi")' in shown
    assert 'Result {"value": 21, "doubled": 42, "extra": {"note": "hi"}}' in shown
    assert "Local variables" not in shown, "a finished run has no locals to show"


def test_a_failed_step_shows_its_error_and_a_collapsible_traceback(staff):
    run = worked(repairable, "page", workflow_id="repair-1")
    response = staff().get(page(run))
    shown = text(response)
    assert '#1 step tests.until_fixed (name="page") failed' in shown
    assert "builtins.RuntimeError: not fixed yet" in shown
    assert response.text.count("<summary>Traceback</summary>") == 2, "the run's error and the step's, each folded"
    assert 'raise RuntimeError("not fixed yet")' in htmllib.unescape(response.text)


def test_the_timeline_shows_timers_signals_groups_children_patches_and_state(staff):
    run = worked(tour, 4, workflow_id="tour-1")
    run.signal("go", {"carrier": "UPS"})
    run = settle(run)
    advance_time(timedelta(minutes=6))  # the "late" signal never comes: its wait times out
    run = settle(run)
    shown = text(staff().get(page(run)))
    assert "#1 patched tour-v2 completed" in shown and "takes the new path true" in shown
    assert "#3 set state completed" in shown and 'published {"doubled": 9}' in shown
    assert "#4 all of completed" in shown and "waits for all of 2 requests" in shown
    child = WorkflowRun.objects.get(parent=run)
    assert "#6 child tests.echo (value=2) completed" in shown and f"child run {child.workflow_id} completed" in shown
    assert "#7 any of completed" in shown
    assert re.search(r"#8 wait signal go completed .*no timeout; received the signal sent", shown)
    assert 'payload {"carrier": "UPS"}' in shown
    assert "#9 sleep cancelled" in shown, "the slower request of an any_of is cancelled"
    assert "waits for the first of 2 requests: #8 finished first" in shown
    assert re.search(r"#10 wait signal late timed out .* timeout 5 min: gives up at", shown)
    assert re.search(r"#11 sleep waiting .* for 30 d; fires at", shown)
    assert "Local variables" in shown and "doubled 9" in shown


def test_a_child_links_its_parent_and_the_parent_links_the_child(staff):
    run = worked(parent, 5, workflow_id="parent-1")
    child = WorkflowRun.objects.get(parent=run)
    client = staff()
    assert f'href="/admin/durable_django/workflowrun/{child.pk}/change/"' in client.get(page(run)).text
    child_page = client.get(page(child))
    assert f'href="/admin/durable_django/workflowrun/{run.pk}/change/"' in child_page.text
    assert "Parent parent-1 at #0" in text(child_page)


def test_a_live_run_shows_its_state_its_locals_and_the_signals_waiting_in_its_inbox(staff):
    run = worked(inspectable, 7, workflow_id="inspect-1")
    run.signal("other", {"n": 1})
    shown = text(staff().get(page(run)))
    assert 'State {"stage": "waiting for shipment", "charge": 14}' in shown
    assert 'stage "waiting for shipment"' in shown and "charge 14" in shown and "order_id 7" in shown
    assert re.search(r"#2 wait signal ship waiting", shown)
    assert re.search(r'Signals waiting .* other sent .* \{"n": 1\}', shown)


def test_locals_that_cannot_be_replayed_show_the_error_instead_of_breaking_the_page(staff):
    run = worked(inspectable, 7, workflow_id="inspect-1")
    WorkflowRun.objects.filter(pk=run.pk).update(workflow_name="tests.gone")  # code removed since
    shown = text(staff().get(page(run)))
    assert "Could not replay the run: WorkflowNotRegistered:" in shown
    assert "#2 wait signal ship waiting" in shown, "the rest of the page is still there"


def test_values_under_secret_looking_keys_are_redacted_everywhere_on_the_page(staff):
    run = worked(secretive, "ann", "hunter2", workflow_id="secret-1")
    run.signal("later", {"authorization": "Bearer sekrit"})
    response = staff().get(page(run))
    for secret in SECRETS:
        assert secret not in response.text, f"{secret!r} is on the page"
    shown = text(response)
    assert 'Input (user="ann", password="[redacted]")' in shown, (
        "a workflow argument passed by position, known by its name"
    )
    assert '"token": "[redacted]"' in shown and '"api_key": "[redacted]"' in shown and '"label": "main"' in shown
    assert 'password="[redacted]"' in shown, "a step's keyword argument"
    assert '"card": "[redacted]"' in shown, "the published state"
    assert '{"authorization": "[redacted]"}' in shown, "a signal waiting in the inbox"
    assert 'password "[redacted]"' in shown, "a local variable"


def test_the_redacted_keys_come_from_the_durable_admin_redact_setting(staff, settings):
    settings.DURABLE_ADMIN_REDACT = ["label"]
    run = worked(secretive, "ann", "hunter2", workflow_id="secret-1")
    shown = text(staff().get(page(run)))
    assert '"label": "[redacted]"' in shown and '"token": "tok-sekrit"' in shown


def test_the_history_download_is_the_replay_export_redacted_for_ordinary_staff(staff):
    run = worked(secretive, "ann", "hunter2", workflow_id="secret-1")
    response = staff().get(page(run, "history"))
    assert response["Content-Disposition"] == 'attachment; filename="secret-1.history.json"'
    document = json.loads(response.content)
    assert document["format"] == "durable_django.history/1" and document["redacted"] is True
    assert document["history"][0]["result"]["token"] == "[redacted]"
    assert not any(secret in response.text for secret in SECRETS)


def test_the_history_download_keeps_secrets_for_users_allowed_to_export_them(staff):
    run = worked(secretive, "ann", "hunter2", workflow_id="secret-1")
    document = json.loads(staff("export_unredacted").get(page(run, "history")).content)
    assert "redacted" not in document
    assert document["history"][0]["result"]["token"] == "tok-sekrit"
    assert document["history"][0]["args"] == {"args": ["ann"], "kwargs": {"password": "hunter2"}}


def test_the_page_takes_the_same_queries_for_a_long_history_as_for_a_short_one(staff):
    client = staff()
    short = worked(chain, 2, workflow_id="chain-2")
    long = worked(chain, 60, workflow_id="chain-60")
    client.get(page(short))  # the first request also fills Django's caches
    assert HistoryEntry.objects.filter(run=long).count() == 60
    with CaptureQueriesContext(connection) as few:
        client.get(page(short))
    with CaptureQueriesContext(connection) as many:
        assert "#59 step tests." in text(client.get(page(long)))
    assert len(many) == len(few) <= 10


def test_the_page_answers_the_workflows_named_queries_that_take_no_arguments(staff):
    from tests.testapp.workflows import cart

    run = worked(cart, "ann", workflow_id="cart-page")
    run.signal("add", {"sku": "mug", "cents": 1200})
    run = settle(run)
    shown = text(staff().get(page(run)))
    assert "Queries the workflow's named queries, answered now" in shown
    assert "count 1" in shown and "total 1200" in shown
    assert "broken QueryFailed: query 'broken' of run 'cart-page' raised ZeroDivisionError: division by zero" in shown
    assert 'variables { "customer": "ann", "items": [{"sku": "mug", "cents": 1200}]' in shown


def test_the_timeline_shows_each_update_received_and_the_reply_or_rejection(staff):
    from durable_django.testing import send_update
    from tests.testapp.conversations import coupon_checkout

    run = worked(coupon_checkout, 100, workflow_id="coupons-page")
    send_update(run, "apply_coupon", "WELCOME", update_id="welcome-1")
    with pytest.raises(Exception, match="already applied"):
        send_update(run, "apply_coupon", "WELCOME")
    shown = text(staff().get(page(run)))
    assert "#0 wait update apply_coupon completed" in shown and "timeout 1 h" in shown
    assert 'received {"update_id": "welcome-1", "name": "apply_coupon", "payload": "WELCOME"}' in shown
    assert "#2 reply apply_coupon completed" in shown and '"value": 90' in shown
    assert "#4 reply apply_coupon completed" in shown and '"error": "WELCOME is already applied"' in shown
    assert "Updates waiting" not in shown


def test_the_page_shows_a_runs_deadline_and_the_updates_no_wait_has_taken(staff):
    from durable_django import updates
    from tests.testapp.conversations import deadline_saga

    run = worked(deadline_saga, 3, workflow_id="deadline-page")
    updates.send(run, "rebook", {"seat": "12C"})
    shown = text(staff().get(page(run)))
    assert "Deadline" in shown and "passed" not in shown
    assert "Updates waiting sent, not yet taken by a wait_update" in shown and "rebook" in shown and '"12C"' in shown
    advance_time(timedelta(hours=2))
    run = settle(run)
    shown = text(staff().get(page(run)))
    assert "passed: DeadlineExceeded raised" in shown
