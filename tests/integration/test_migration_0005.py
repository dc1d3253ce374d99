"""Migration 0005 on a database with runs in it: existing results and states become filterable."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from durable_django.models import WorkflowRun

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("durable_django", "0004_schedules")]


def migrate(targets: list[tuple[str, str]]) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)


def test_runs_written_before_the_migration_can_be_filtered_by_result_and_state_after_it():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("durable_django")
    migrate(BEFORE)
    try:
        old = uuid.uuid4()
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO durable_django_workflowrun (id, workflow_id, workflow_name, status, input_json, "
                "result_json, state_json, next_seq, generation, cancel_requested) "
                "VALUES (%s, 'old-run', 'tests.echo', 'completed', '{}', %s, %s, 0, 0, %s)",
                [old.hex if connection.vendor == "sqlite" else old, '{"charge": "ch_1"}', '"shipped"', False],
            )
    finally:
        migrate(latest)
    run = WorkflowRun.objects.get(workflow_id="old-run")
    assert run.attributes == {} and run.subject is None
    assert WorkflowRun.objects.filter(result_data__charge="ch_1").get() == run
    assert WorkflowRun.objects.filter(state_data="shipped").get() == run
    assert run.result == {"charge": "ch_1"} and run.state == "shipped"
