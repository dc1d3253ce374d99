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
