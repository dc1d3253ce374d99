"""Library behaviour found wrong while building the admin, now fixed."""

from __future__ import annotations

import pytest
from django.db import transaction

import durable_django as durable
from durable_django.models import WorkflowRun
from durable_django.ops import repair
from durable_django.testing import run_until_idle
from tests.testapp.workflows import collect, echo_workflow, repairable

Status = WorkflowRun.Status


pytestmark = [pytest.mark.usefixtures("no_messages")]


@pytest.mark.django_db
def test_run_until_idle_finishes_a_run_woken_twice_inside_a_test_transaction():
    # Given a TestCase-style test: everything happens inside one transaction that never commits.
    assert transaction.get_connection().in_atomic_block
    run = collect.start(1)
    run_until_idle()  # the run waits for its signal
    run.signal("item", "a")  # the second wake of the same run in this transaction
    run_until_idle()
    run.refresh_from_db()
    assert run.status == Status.COMPLETED


@pytest.mark.django_db(transaction=True)
def test_fork_refuses_a_taken_or_malformed_workflow_id_with_a_durable_error():
    run = repairable.start("findings", workflow_id="repair-findings")
    run_until_idle()
    echo_workflow.start(1, workflow_id="taken")
    for bad in ("taken", " padded ", "bell\x07"):
        try:
            repair.fork(run, 0, workflow_id=bad)
        except durable.DurableError:
            continue
        except Exception as error:
            raised = type(error).__name__
            raise AssertionError(f"fork(workflow_id={bad!r}) raised {raised}, not a DurableError") from error
        raise AssertionError(f"fork(workflow_id={bad!r}) was accepted")
