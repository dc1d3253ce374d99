"""``durable_replay_check``: the deploy gate that lists the live runs new code would block."""

from __future__ import annotations

import json

import pytest

import durable_django as durable
from durable_django.core import registry
from durable_django.models import WorkflowRun
from durable_django.testing import assert_replays, run_workflow
from tests.testapp.workflows import collect, double, echo_workflow, inspectable

pytestmark = [pytest.mark.django_db]


@durable.workflow(name="tests.commands.inspectable_v2")
def charges_more(order_id):
    return (yield double(order_id + 1))


@pytest.fixture
def runs():
    return [
        run_workflow(inspectable, 1, workflow_id="order-1"),
        run_workflow(inspectable, 2, workflow_id="order-2"),
        run_workflow(collect, 1, workflow_id="collect/1"),
        run_workflow(echo_workflow, 1, workflow_id="done"),  # finished: not checked
    ]


def test_when_every_live_run_replays_the_check_passes(command, runs):
    result = command("durable_replay_check")
    assert (result.status, result.out) == (0, "3 runs checked, 0 would be blocked by non-determinism\n")


def test_runs_the_new_code_would_block_are_listed_and_the_exit_status_fails(command, runs, monkeypatch):
    monkeypatch.setitem(registry._workflows, "tests.inspectable", charges_more)
    result = command("durable_replay_check")
    assert result.status == 1
    assert "3 runs checked, 2 would be blocked by non-determinism" in result.err
    listed = result.out.splitlines()
    assert sorted(line.split(":", 1)[0] for line in listed) == [
        "order-1 (tests.inspectable, waiting)",
        "order-2 (tests.inspectable, waiting)",
    ]
    assert all("history recorded step tests.double" in line for line in listed)


def test_the_workflow_filter_checks_only_its_runs(command, runs, monkeypatch):
    monkeypatch.setitem(registry._workflows, "tests.inspectable", charges_more)
    result = command("durable_replay_check", "--workflow", "tests.collect")
    assert (result.status, result.out) == (0, "1 run checked, 0 would be blocked by non-determinism\n")


def test_a_blocked_run_the_code_now_replays_is_named_as_resumable(command, runs):
    WorkflowRun.objects.filter(workflow_id="order-1").update(status=WorkflowRun.Status.BLOCKED)
    result = command("durable_replay_check")
    assert result.out.splitlines()[0] == (
        "order-1 (tests.inspectable, blocked): replays with this code; durable_resume continues it"
    )


def test_unknown_workflows_count_as_blocked(command, runs, monkeypatch):
    monkeypatch.delitem(registry._workflows, "tests.collect")
    result = command("durable_replay_check")
    assert result.status == 1
    assert "collect/1 (tests.collect, waiting): " in result.out
    assert "no workflow named 'tests.collect'" in result.out


def test_export_dir_gets_every_checked_history_for_assert_replays(command, runs, tmp_path):
    command("durable_replay_check", "--export-dir", str(tmp_path))
    files = sorted(path.name for path in tmp_path.iterdir())
    assert files == ["collect%2F1.json", "order-1.json", "order-2.json"]
    assert json.loads((tmp_path / "order-1.json").read_text())["workflow_id"] == "order-1"
    for path in tmp_path.iterdir():
        assert_replays(path)


def test_a_missing_export_dir_is_refused(command, tmp_path):
    result = command("durable_replay_check", "--export-dir", str(tmp_path / "nope"))
    assert result.status == 1 and "no such directory" in result.err


def test_many_runs_show_progress(command):
    for _ in range(120):
        collect.start(1)
    result = command("durable_replay_check")
    assert result.err.splitlines() == ["checked 100 of 120 runs", "checked 120 of 120 runs"]
    assert result.out == "120 runs checked, 0 would be blocked by non-determinism\n"
