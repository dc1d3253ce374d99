"""The run page's actions: each calls the library, each has its own permission, each refuses clearly."""

from __future__ import annotations

import re

import pytest

from durable_django.models import Signal, WorkflowRun
from tests.testapp.models import Counter
from tests.testapp.workflows import collect, echo_workflow, repairable

from .conftest import ALL_ACTIONS
from .runs import LIST, page, settle, worked

pytestmark = [pytest.mark.django_db(transaction=True)]
Status = WorkflowRun.Status


def messages(response) -> list[str]:
    return re.findall(r'<li class="(?:success|error|warning)">(.*?)</li>', response.text, re.DOTALL)


def test_cancel_asks_first_then_cancels_a_waiting_run(staff):
    run = worked(collect, 1, workflow_id="collect-1")
    client = staff("cancel")
    assert f'href="/admin/durable_django/workflowrun/{run.pk}/cancel/"' in client.get(page(run)).text
    confirm = client.get(page(run, "cancel"))
    assert "Cancel this run?" in confirm.text and "Yes, cancel the run" in confirm.text
    assert settle(run).cancel_requested_at is None, "showing the question changes nothing"
    done = client.post(page(run, "cancel"), follow=True)
    assert done.redirect_chain == [(page(run), 302)]
    assert messages(done) == ["Run collect-1 will be cancelled at its current yield; its cleanup code runs first."]
    assert settle(run).status == Status.CANCELLED


def test_cancel_is_refused_with_the_reason_on_a_finished_run(staff):
    run = worked(echo_workflow, 1, workflow_id="echo-1")
    client = staff("cancel")
    assert "Cancel run" not in client.get(page(run)).text, "no button where it cannot work"
    refused = client.post(page(run, "cancel"), follow=True)
    assert messages(refused) == [
        "Not done: run &#x27;echo-1&#x27; is completed; there is nothing left to cancel. "
        "Check run.status first, or start a new run."
    ]
    assert settle(run).status == Status.COMPLETED


def test_retry_runs_a_failed_run_again_from_its_failed_step(staff):
    run = worked(repairable, "page", workflow_id="repair-1")
    Counter.objects.create(name="page:fixed")
    client = staff("retry")
    assert "Retry this run?" in client.get(page(run, "retry")).text
    done = client.post(page(run, "retry"), follow=True)
    assert messages(done) == ["Run repair-1 is retrying."]
    run = settle(run)
    assert (run.status, run.result) == (Status.COMPLETED, [1, "fixed", 1])


def test_retry_is_refused_with_the_reason_on_a_run_that_did_not_fail(staff):
    run = worked(echo_workflow, 1, workflow_id="echo-1")
    refused = staff("retry").post(page(run, "retry"), follow=True)
    assert messages(refused) == [
        "Not done: run &#x27;echo-1&#x27; is completed; only failed or blocked runs can be retried."
    ]


def test_a_signal_sent_from_the_form_reaches_the_workflow(staff):
    run = worked(collect, 1, workflow_id="collect-1")
    client = staff("signal")
    form = client.get(page(run, "signal"))
    assert 'name="name"' in form.text and 'name="payload"' in form.text
    done = client.post(page(run, "signal"), {"name": "item", "payload": '{"sku": "A-1", "qty": 2}'}, follow=True)
    assert messages(done) == ["Signal &#x27;item&#x27; sent to run collect-1."]
    run = settle(run)
    assert (run.status, run.result) == (Status.COMPLETED, [{"sku": "A-1", "qty": 2}])


@pytest.mark.parametrize(
    "payload,error",
    [
        ("{'single': 'quotes'}", "This is not valid JSON: Expecting property name enclosed in double quotes"),
        ("[1, 2", "This is not valid JSON: Expecting"),
        ('{"n": NaN}', "This is not valid JSON: NaN is not valid JSON"),
        ('{"n": -Infinity}', "This is not valid JSON: -Infinity is not valid JSON"),
        ('"nul \\u0000 inside"', "contains a NUL character (U+0000), which PostgreSQL cannot store"),
        ('"lone \\ud800"', "contains a lone surrogate and is not valid UTF-8"),
    ],
)
def test_a_signal_payload_that_is_not_storable_json_is_a_form_error(staff, payload, error):
    run = worked(collect, 1, workflow_id="collect-1")
    response = staff("signal").post(page(run, "signal"), {"name": "item", "payload": payload})
    assert response.status_code == 200
    (shown,) = re.findall(r'<ul class="errorlist"[^>]*><li>(.*?)</li>', response.text)
    assert error in shown
    assert not Signal.objects.filter(run=run).exists()


def test_an_empty_payload_is_null(staff):
    run = worked(collect, 1, workflow_id="collect-1")
    staff("signal").post(page(run, "signal"), {"name": "item", "payload": ""})
    assert settle(run).result == [None]


def test_a_signal_to_a_finished_run_is_refused_on_the_form(staff):
    run = worked(echo_workflow, 1, workflow_id="echo-1")
    response = staff("signal").post(page(run, "signal"), {"name": "item", "payload": "1"})
    assert response.status_code == 200
    assert "signal &#x27;item&#x27; would never be read" in response.text
    assert 'class="errorlist nonfield"' in response.text


def test_restart_from_a_step_forks_the_run_and_opens_the_new_one(staff):
    run = worked(repairable, "fork", workflow_id="repair-1")
    Counter.objects.create(name="fork:fixed")
    client = staff("fork")
    form = client.get(page(run, "fork"), {"seq": 1})
    assert '<option value="1" selected>#1 step tests.until_fixed</option>' in form.text
    done = client.post(page(run, "fork"), {"from_seq": 1, "workflow_id": "repair-1-again"}, follow=True)
    new = WorkflowRun.objects.get(workflow_id="repair-1-again")
    assert done.redirect_chain == [(page(new), 302)]
    assert messages(done) == ["Run repair-1-again restarts repair-1 from #1."]
    new = settle(new)
    assert (new.status, new.result) == (Status.COMPLETED, [1, "fixed", 1])
    assert Counter.objects.get(name="fork:before").value == 1, "the step before #1 was reused, not run again"


def test_restart_with_a_workflow_id_that_is_taken_is_a_form_error(staff):
    run = worked(repairable, "taken", workflow_id="repair-1")
    worked(echo_workflow, 1, workflow_id="echo-1")
    response = staff("fork").post(page(run, "fork"), {"from_seq": 0, "workflow_id": "echo-1"})
    assert response.status_code == 200
    assert "workflow_id &#x27;echo-1&#x27; is taken by another run" in response.text
    assert WorkflowRun.objects.count() == 2


def test_restart_from_a_position_the_run_does_not_have_is_a_form_error(staff):
    run = worked(repairable, "nowhere", workflow_id="repair-1")
    response = staff("fork").post(page(run, "fork"), {"from_seq": 9})
    assert response.status_code == 200
    assert "Select a valid choice. 9 is not one of the available choices." in response.text


def test_a_viewer_sees_no_action_buttons_and_can_only_download(staff):
    run = worked(collect, 1, workflow_id="collect-1")
    html = staff().get(page(run)).text
    for button in ("Send signal", "Retry", "Restart from a step", "Cancel run", "restart here"):
        assert button not in html
    assert "Download history JSON" in html
    assert "Save" not in html and "Delete" not in html


@pytest.mark.parametrize("action", ALL_ACTIONS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_each_action_answers_403_without_its_permission(staff, action, method):
    run = worked(collect, 1, workflow_id="collect-1")
    others = [name for name in ALL_ACTIONS if name != action]
    client = staff(*others)  # every permission but this one
    response = getattr(client, method)(page(run, action), {"name": "item", "payload": "1", "from_seq": 0})
    assert response.status_code == 403
    run = settle(run)
    assert run.status == Status.WAITING and run.cancel_requested_at is None
    assert WorkflowRun.objects.count() == 1 and not Signal.objects.exists()


@pytest.mark.parametrize("action", ALL_ACTIONS)
def test_each_action_shows_its_button_with_its_permission(staff, action):
    run = worked(repairable, "buttons", workflow_id="repair-1")
    WorkflowRun.objects.filter(pk=run.pk).update(status=Status.BLOCKED)  # the one state every action allows
    assert f"/{action}/" in staff(action).get(page(run)).text


def test_no_one_adds_changes_or_deletes_runs_in_the_admin(admin_client):
    run = worked(echo_workflow, 1, workflow_id="echo-1")
    assert admin_client.get(f"{LIST}add/").status_code == 403
    assert admin_client.post(page(run), {"workflow_id": "renamed"}).status_code == 403
    assert admin_client.get(page(run, "delete")).status_code == 403
    assert WorkflowRun.objects.get().workflow_id == "echo-1"


def test_staff_without_the_view_permission_cannot_open_a_run_or_its_download(staff, django_user_model):
    run = worked(echo_workflow, 1, workflow_id="echo-1")
    client = staff()
    client.force_login(django_user_model.objects.create_user(username="nobody", password="pw", is_staff=True))
    assert client.get(page(run)).status_code == 403
    assert client.get(page(run, "history")).status_code == 403
