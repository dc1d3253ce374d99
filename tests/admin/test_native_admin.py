"""The admin meets the rest of Django: parameter names, the signals a run waits for, killed
attempts, attributes and subjects, a model's own runs on its page, and Django 6's markup."""

from __future__ import annotations

import os
import re

import django
import pytest

from durable_django.models import HistoryEntry, LostAttempt, WorkItem
from durable_django.store import work_items
from durable_django.store.owners import Owner
from durable_django.store.querysets import db_now_plus
from durable_django.testing import run_until_idle
from example_project.shop.models import Order
from tests.testapp.tasks import add
from tests.testapp.workflows import echo_workflow, fulfil_order, two_names

from .runs import page, settle, worked
from .test_run_page import text

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_inputs_and_step_arguments_show_with_their_parameter_names(staff):
    run = worked(fulfil_order, 1042, 3499, "ann@example.com", card={"number": "4242"}, workflow_id="named-1")
    shown = text(staff().get(page(run)))
    assert 'Input (order_id=1042, amount_cents=3499, email="ann@example.com", card="[redacted]")' in shown
    assert '#0 step tests.reserve_stock (order_id=1042, skus=["BOOK-1984", "MUG-BLUE"])' in shown


def test_a_task_runs_input_shows_as_the_task_was_called(staff):
    result = add.enqueue(4, b=5)
    run_until_idle()
    shown = text(staff().get(f"/admin/durable_django/workflowrun/?q={result.id}"))
    assert result.id in shown
    from durable_django.models import WorkflowRun

    run = WorkflowRun.objects.get(workflow_id=result.id)
    shown = text(staff().get(page(run)))
    assert "Input (a=4, b=5)" in shown
    assert "step durable_django.task:default:default:tests.testapp.tasks.add (a=4, b=5) completed" in shown


def test_the_signal_form_offers_the_names_the_run_waits_for(staff):
    run = worked(two_names, workflow_id="names-1")
    client = staff("signal")
    form = client.get(page(run, "signal")).text
    assert re.findall(r'<option value="([^"]+)">', form) == ["a"]
    assert "waits for <code>a</code>" in form
    client.post(page(run, "signal"), {"name": "a", "payload": "1"})
    settle(run)
    assert re.findall(r'<option value="([^"]+)">', client.get(page(run, "signal")).text) == ["b"]


def test_a_killed_attempt_leaves_a_trace_in_the_timeline(staff):
    run = echo_workflow.start(3, workflow_id="killed-1")
    advance = WorkItem.objects.get(run=run, kind=WorkItem.Kind.ADVANCE)
    held = work_items.take(advance.pk)  # a worker opens the step, holds it ... and dies without a word
    assert held is not None and held.attempt == 1
    WorkItem.objects.filter(pk=held.item_id).update(lease_expires_at=db_now_plus(-1))  # its lease ran out
    run = settle(run)
    assert run.status == "completed"
    [lost] = LostAttempt.objects.filter(entry__run=run)
    holder = Owner.parse(lost.owner)
    assert lost.attempt == 1 and holder is not None and holder.pid == os.getpid(), "the claim named this process"
    shown = text(staff().get(page(run)))
    assert "#0 step tests.double (value=3) completed 2 attempts" in shown
    assert f"Attempt 1 was lost: its worker ({holder.host}:{holder.pid}) died or stopped answering" in shown


def test_the_run_page_shows_attributes_and_links_the_subject(staff, admin_user):
    order = Order.objects.create(amount_cents=1999)
    run = echo_workflow.using(attributes={"customer": 42}, subject=order).start(1, workflow_id="linked-1")
    run = settle(run)
    response = staff().get(page(run))
    shown = text(response)
    assert 'Attributes {"customer": 42}' in shown
    assert f"Subject shop.order {order.pk}" in shown


def test_a_models_change_page_lists_its_runs_with_links_to_their_timelines(admin_client):
    order, other = Order.objects.create(amount_cents=1999), Order.objects.create(amount_cents=5)
    mine = [echo_workflow.using(subject=order).start(n, workflow_id=f"order-run-{n}") for n in (1, 2)]
    echo_workflow.using(subject=other).start(3, workflow_id="not-mine")
    run_until_idle()
    response = admin_client.get(f"/admin/shop/order/{order.pk}/change/")
    assert response.status_code == 200
    html = response.text
    for run in mine:
        assert f'href="/admin/durable_django/workflowrun/{run.pk}/change/"' in html
    assert "not-mine" not in html
    shown = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    assert "Workflow runs" in shown and "order-run-1 tests.echo completed" in shown
    link = f"/admin/durable_django/workflowrun/?subject_type=shop.order&amp;subject_id={order.pk}"
    assert link in html
    listed = admin_client.get(link.replace("&amp;", "&"))
    assert listed.status_code == 200 and "order-run-2" in listed.text and "not-mine" not in listed.text


def test_an_action_page_uses_the_breadcrumb_markup_of_this_django_version(staff):
    run = worked(two_names, workflow_id="crumbs-1")
    client = staff("signal", "cancel")
    own = client.get(page(run)).text
    for action in ("cancel", "signal"):
        html = client.get(page(run, action)).text
        if django.VERSION >= (6, 1):
            assert '<ol class="breadcrumbs">' in own and '<ol class="breadcrumbs">' in html
            crumbs = html.split('<ol class="breadcrumbs">', 1)[1].split("</ol>", 1)[0]
            assert crumbs.count("<li") == 5 and 'aria-current="page"' in crumbs
        else:
            assert '<div class="breadcrumbs">' in own and '<div class="breadcrumbs">' in html
    assert HistoryEntry.objects.filter(run=run).exists()


def test_the_run_list_finds_runs_by_an_attribute(staff):
    echo_workflow.using(attributes={"customer": 42, "plan": "pro"}).start(1, workflow_id="cust-42")
    echo_workflow.using(attributes={"customer": 7}).start(1, workflow_id="cust-7")
    client = staff()
    for query in ("customer=42", "plan=pro"):
        listed = client.get("/admin/durable_django/workflowrun/", {"q": query}).text
        assert "cust-42" in listed and "cust-7" not in listed, query
    assert "cust-7" in client.get("/admin/durable_django/workflowrun/", {"q": "cust-7"}).text
