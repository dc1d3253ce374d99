"""Child workflows with a workflow_id the parent chooses: ``yield other.using(workflow_id=...)(args)``."""

from __future__ import annotations

import pytest

import durable_django as durable
from durable_django.models import HistoryEntry, WorkflowRun
from durable_django.testing import run_workflow
from tests.testapp.workflows import echo_workflow

pytestmark = pytest.mark.django_db
Status = WorkflowRun.Status


@durable.workflow(name="tests.named_child_parent")
def named_child_parent(order_id: int):
    child = yield echo_workflow.using(workflow_id=f"invoice-{order_id}")(order_id)
    return child["doubled"]


@durable.workflow(name="tests.taken_child_parent")
def taken_child_parent(child_id: str):
    try:
        yield echo_workflow.using(workflow_id=child_id)(1)
    except durable.ChildFailed as error:
        return {"refused": error.error_type, "message": error.message}
    return "started"


@durable.workflow(name="tests.twin_children")
def twin_children():
    try:
        yield durable.all_of(echo_workflow.using(workflow_id="twin")(1), echo_workflow.using(workflow_id="twin")(2))
    except durable.ChildFailed as error:
        return error.error_type
    return "both started"


@durable.workflow(name="tests.bad_child_id")
def bad_child_id():
    yield echo_workflow.using(workflow_id=" padded")(1)


def test_a_child_started_with_using_has_the_chosen_workflow_id():
    run = run_workflow(named_child_parent, 7)
    assert (run.status, run.result) == (Status.COMPLETED, 14)
    child = WorkflowRun.objects.get(parent=run)
    assert child.workflow_id == "invoice-7"
    assert HistoryEntry.objects.get(run=run, seq=0).child_id == child.pk


def test_children_keep_their_default_ids_without_using():
    from tests.testapp.workflows import parent

    run = run_workflow(parent, 3, workflow_id="plain-parent")
    assert WorkflowRun.objects.get(parent=run).workflow_id == "plain-parent/0"


def test_a_chosen_child_id_already_taken_raises_child_failed_at_the_yield_and_starts_nothing():
    existing = echo_workflow.start(5, workflow_id="taken-1")
    run = run_workflow(taken_child_parent, "taken-1")
    assert run.status == Status.COMPLETED
    assert run.result["refused"] == "durable_django.exceptions.WorkflowIdConflict"
    assert "'taken-1' is already used by run" in run.result["message"]
    assert WorkflowRun.objects.filter(workflow_id="taken-1").get().pk == existing.pk
    assert not WorkflowRun.objects.filter(parent=run).exists()
    assert run.query() == {}  # and the recorded refusal replays: the run finished


def test_two_children_of_one_group_with_one_id_the_second_is_refused():
    run = run_workflow(twin_children)
    assert run.result == "durable_django.exceptions.WorkflowIdConflict"
    assert WorkflowRun.objects.filter(workflow_id="twin").count() == 1


def test_a_bad_chosen_child_id_fails_the_parent_where_it_was_given():
    run = run_workflow(bad_child_id)
    assert run.status == Status.FAILED
    assert run.error["type"] == "durable_django.exceptions.InvalidWorkflowId"
    assert 'yield echo_workflow.using(workflow_id=" padded")(1)' in run.error["traceback"]
    assert not WorkflowRun.objects.exclude(pk=run.pk).exists()
