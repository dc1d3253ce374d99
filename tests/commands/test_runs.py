"""``durable_runs``: a table of runs, one run with its history or as JSON, and a run followed live."""

from __future__ import annotations

import json

import pytest

from durable_django.models import WorkflowRun
from durable_django.ops import console, replay
from durable_django.testing import run_workflow, send_signal
from tests.testapp.workflows import collect, echo_workflow, inspectable, parent, repairable

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def runs():
    return {
        "done": run_workflow(echo_workflow, 1, workflow_id="done"),
        "waiting": run_workflow(inspectable, 2, workflow_id="waiting"),
        "failed": run_workflow(repairable, "x", workflow_id="failed"),
    }


def test_the_list_is_a_table_newest_first_with_the_last_request(command, runs):
    lines = command("durable_runs").out.splitlines()
    assert lines[0].split() == ["WORKFLOW", "ID", "WORKFLOW", "STATUS", "LAST", "REQUEST", "CREATED", "DURATION"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["failed", "tests.repairable", "failed"],
        ["waiting", "tests.inspectable", "waiting"],
        ["done", "tests.echo", "completed"],
    ]
    assert "signal ship" in lines[2]
    assert lines[0].index("STATUS") == lines[1].index("failed", len("failed")), "columns are aligned"


def test_the_list_filters_by_status_and_workflow_and_says_what_the_limit_hid(command, runs):
    assert [line.split()[0] for line in command("durable_runs", "--status", "waiting").out.splitlines()[1:]] == [
        "waiting"
    ]
    both = command("durable_runs", "--status", "waiting", "--status", "failed").out.splitlines()
    assert len(both) == 3
    assert command("durable_runs", "--workflow", "tests.echo").out.splitlines()[1].startswith("done ")
    limited = command("durable_runs", "--limit", "2").out.splitlines()
    assert len(limited) == 4 and limited[-1] == "2 of 3 runs; --limit shows more"
    assert command("durable_runs", "--workflow", "nope").out == "no runs\n"


def test_one_run_shows_its_fields_and_history(command, runs):
    out = command("durable_runs", "waiting").out
    assert "workflow id: waiting" in out
    assert 'state:       {"stage": "waiting for shipment", "charge": 4}' in out
    history = out.split("\n\n", 1)[1].splitlines()
    assert history[0].split() == ["#", "KIND", "NAME", "STATUS", "ATTEMPTS", "DETAIL"]
    assert history[1].split() == ["0", "step", "tests.double", "completed", "1", "(2)", "->", "4"]
    assert history[3].split() == ["2", "signal", "ship", "scheduled"]
    failed = command("durable_runs", "failed").out
    assert "error:       durable_django.exceptions.StepFailed: step 'tests.until_fixed' failed" in failed
    assert '("x") error: builtins.RuntimeError: not fixed yet' in failed


def test_a_parent_names_its_children_and_a_child_its_parent(command):
    run_workflow(parent, 3, workflow_id="parent")
    assert "child:       parent/0 (completed)" in command("durable_runs", "parent").out
    assert "parent:      parent (at #0)" in command("durable_runs", "parent/0").out


def test_json_is_the_history_export(command, runs):
    result = command("durable_runs", "waiting", "--json")
    assert json.loads(result.out) == json.loads(json.dumps(replay.export(runs["waiting"])))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nobody",), "no run has workflow_id 'nobody'"),
        (("--json",), "--json and --follow need a workflow_id"),
        (("--status", "sleeping"), "'sleeping' is not a status; use one of pending, running"),
        (("--limit", "0"), "argument --limit: 0 is less than 1"),
        (("done", "--follow", "--interval", "0"), "argument --interval: 0 must be a finite number above 0"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_error(command, runs, args, message):
    result = command("durable_runs", *args)
    assert result.status == 1
    assert message in result.err


def test_following_prints_each_change_until_the_run_finishes():
    run = run_workflow(collect, 2, workflow_id="follow")
    signals = iter(["a", "b"])
    lines = list(console.follow(run, interval=1, timeout=60, sleep=lambda _: send_signal(run, "item", next(signals))))
    assert [line.split(" ", 1)[1] for line in lines] == [
        "#0 signal item scheduled",
        "run waiting",
        '#0 signal item completed  -> "a"',
        "#1 signal item scheduled",
        '#1 signal item completed  -> "b"',
        'run completed: ["a", "b"]',
    ]
    assert run.status == WorkflowRun.Status.COMPLETED


def test_follow_exits_by_how_the_run_ended(command, runs, monkeypatch):
    done = command("durable_runs", "done", "--follow")
    assert done.status == 0
    assert done.out.splitlines()[-1].endswith(' run completed: {"value": 1, "doubled": 2, "extra": {}}')
    failed = command("durable_runs", "failed", "--follow")
    assert failed.status == 1 and "the run is failed" in failed.err
    waiting = command("durable_runs", "waiting", "--follow", "--interval", "0.05", "--timeout", "0.2")
    assert waiting.status == 2 and "still waiting after 0.2 s" in waiting.err

    def interrupted(run, **options):
        yield "a line"
        raise KeyboardInterrupt

    monkeypatch.setattr(console, "follow", interrupted)
    stopped = command("durable_runs", "waiting", "--follow")
    assert stopped.status == 130 and "stopped following; the run is waiting" in stopped.err
