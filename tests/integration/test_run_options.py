"""Per-run options go through ``wf.using(...)``: a new definition, the workflow's signature untouched."""

from __future__ import annotations

import pytest

import durable_django as durable
from durable_django.testing import run_until_idle
from tests.testapp.workflows import echo_workflow

pytestmark = pytest.mark.django_db


def test_using_returns_a_new_definition_and_leaves_the_workflow_unchanged():
    named = echo_workflow.using(workflow_id="echo-using")
    assert named is not echo_workflow and named.name == echo_workflow.name
    assert named.options.workflow_id == "echo-using"
    assert echo_workflow.options.workflow_id is None


def test_a_run_started_through_using_has_that_workflow_id_and_starts_once():
    first = echo_workflow.using(workflow_id="echo-once").start("hi")
    again = echo_workflow.using(workflow_id="echo-once").start("hi")
    assert first.pk == again.pk and first.workflow_id == "echo-once"
    run_until_idle()
    first.refresh_from_db()
    assert first.status == durable.WorkflowRun.Status.COMPLETED


def test_two_different_workflow_ids_for_one_start_are_refused():
    with pytest.raises(durable.InvalidWorkflowId, match="give the workflow_id once"):
        echo_workflow.using(workflow_id="a").start("hi", workflow_id="b")


def test_starting_a_workflow_id_again_with_other_arguments_names_both_inputs():
    echo_workflow.start(1, note="a", workflow_id="echo-args")
    again = echo_workflow.start(1, note="a", workflow_id="echo-args")  # same arguments: the same run
    assert again.workflow_id == "echo-args"
    with pytest.raises(durable.WorkflowIdConflict) as caught:
        echo_workflow.start(2, workflow_id="echo-args")
    message = str(caught.value)
    assert '"args":[1]' in message and '"args":[2]' in message and "use another workflow_id" in message


def test_keyword_order_does_not_make_a_conflict():
    first = echo_workflow.start(1, a=1, b=2, workflow_id="echo-order")
    assert echo_workflow.start(1, b=2, a=1, workflow_id="echo-order").pk == first.pk


def test_a_run_that_continued_as_new_is_compared_with_the_arguments_it_was_started_with():
    from tests.testapp.workflows import adder

    run = adder.start(0, 1, workflow_id="adder-args")
    run.signal("add", 5)
    run_until_idle()
    run.refresh_from_db()
    assert run.generation == 1  # its input is now (5, 1)
    assert adder.start(0, 1, workflow_id="adder-args").pk == run.pk
    with pytest.raises(durable.WorkflowIdConflict):
        adder.start(5, 1, workflow_id="adder-args")
