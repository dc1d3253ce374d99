"""Runs you can find: ``attributes`` a filter() can use, results and state as JSON, a subject model."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import durable_django as durable
from durable_django.models import WorkflowRun
from durable_django.testing import run_until_idle
from example_project.shop.models import Order
from tests.testapp.workflows import echo_workflow, stages

pytestmark = pytest.mark.django_db


def test_attributes_are_stored_with_the_run_and_filter_finds_them():
    mine = echo_workflow.using(attributes={"customer": 42, "plan": "pro"}).start(1)
    echo_workflow.using(attributes={"customer": 7}).start(2)
    echo_workflow.start(3)

    assert mine.attributes == {"customer": 42, "plan": "pro"}
    assert list(WorkflowRun.objects.filter(attributes__customer=42)) == [mine]
    assert list(WorkflowRun.objects.filter(attributes__plan="pro", attributes__customer=42)) == [mine]
    assert WorkflowRun.objects.filter(attributes__customer=43).count() == 0
    assert WorkflowRun.objects.get(pk=mine.pk).attributes == {"customer": 42, "plan": "pro"}


def test_a_run_without_attributes_has_an_empty_dict():
    assert echo_workflow.start(1).attributes == {}


def test_attributes_must_be_json_with_str_keys_and_are_refused_at_the_call_site():
    with pytest.raises(durable.SerializationError, match="attributes"):
        echo_workflow.using(attributes={"when": object()})
    with pytest.raises(durable.SerializationError, match="str keys"):
        echo_workflow.using(attributes={1: "one"})
    with pytest.raises(durable.InvalidRequest, match="dict"):
        echo_workflow.using(attributes=["customer", 42])  # type: ignore[arg-type]


def test_using_keeps_earlier_options_and_the_workflow_is_unchanged():
    configured = echo_workflow.using(workflow_id="echo-attrs").using(attributes={"customer": 1})
    assert configured.options.workflow_id == "echo-attrs"
    assert configured.options.attributes == {"customer": 1}
    assert echo_workflow.options.attributes is None


def test_results_and_state_are_json_that_filter_can_read():
    run = echo_workflow.start(21, note="hi")
    staged = stages.start()
    run_until_idle()
    assert WorkflowRun.objects.filter(result_data__doubled=42).get() == run
    run.refresh_from_db()
    assert run.result_data == run.result == {"value": 21, "doubled": 42, "extra": {"note": "hi"}}
    staged.refresh_from_db()
    assert staged.state_data == staged.state
    assert WorkflowRun.objects.filter(state_data=staged.state).get() == staged


def test_a_subject_links_the_run_to_a_model_instance():
    order, other = Order.objects.create(amount_cents=1999), Order.objects.create(amount_cents=5)
    first = echo_workflow.using(subject=order).start(1)
    second = echo_workflow.using(subject=order, attributes={"try": 2}).start(2)
    echo_workflow.using(subject=other).start(3)

    assert set(WorkflowRun.objects.for_subject(order)) == {first, second}
    assert first.subject_type == "shop.order" and first.subject_id == str(order.pk)
    assert WorkflowRun.objects.get(pk=first.pk).subject == order
    assert echo_workflow.start(4).subject is None


def test_for_subject_is_one_query():
    order = Order.objects.create(amount_cents=1)
    echo_workflow.using(subject=order).start(1)
    with CaptureQueriesContext(connection) as queries:
        assert len(list(WorkflowRun.objects.for_subject(order))) == 1
    assert len(queries) == 1


def test_a_subject_that_is_not_a_saved_model_instance_is_refused():
    with pytest.raises(durable.InvalidRequest, match="saved model instance"):
        echo_workflow.using(subject=Order(amount_cents=1))
    with pytest.raises(durable.InvalidRequest, match="saved model instance"):
        echo_workflow.using(subject="order-1")  # type: ignore[arg-type]


def test_a_deleted_subject_leaves_the_run_and_reads_as_none():
    order = Order.objects.create(amount_cents=1)
    run = echo_workflow.using(subject=order).start(1)
    order.delete()
    run = WorkflowRun.objects.get(pk=run.pk)
    assert run.subject is None and run.subject_type == "shop.order"


def test_an_idempotent_start_returns_the_first_run_with_its_own_attributes():
    first = echo_workflow.using(workflow_id="once", attributes={"n": 1}).start(1)
    again = echo_workflow.using(workflow_id="once", attributes={"n": 2}).start(1)
    assert again.pk == first.pk and again.attributes == {"n": 1}


def test_a_fork_keeps_the_attributes_and_the_subject():
    order = Order.objects.create(amount_cents=1)
    run = echo_workflow.using(subject=order, attributes={"customer": 9}).start(1)
    run_until_idle()
    forked = durable.fork(run, 0)
    assert forked.attributes == {"customer": 9} and forked.subject == order


@pytest.mark.postgres
def test_filter_on_an_attribute_uses_the_gin_index_on_postgresql():
    echo_workflow.using(attributes={"customer": 42}).start(1)
    query = WorkflowRun.objects.filter(attributes__customer=42).values("pk")
    nested = WorkflowRun.objects.filter(attributes__address__city="Oslo").values("pk")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plans = []
        for queryset in (query, nested):
            sql, params = queryset.query.sql_with_params()
            cursor.execute(f"EXPLAIN {sql}", params)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
    assert all("durable_run_attributes" in plan for plan in plans), plans


@pytest.mark.postgres
def test_attribute_equality_still_means_equality_for_lists_and_missing_keys():
    # Containment would match a list that holds more; those lookups keep Django's own SQL.
    tagged = echo_workflow.using(attributes={"tags": ["a", "b"], "n": 1.0}).start(1)
    assert WorkflowRun.objects.filter(attributes__tags=["a"]).count() == 0
    assert list(WorkflowRun.objects.filter(attributes__tags=["a", "b"])) == [tagged]
    assert list(WorkflowRun.objects.filter(attributes__n=1)) == [tagged]
    assert WorkflowRun.objects.filter(attributes__missing=None).count() == 0
