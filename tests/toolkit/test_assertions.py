"""assert_history shows a readable diff; assert_replays replays exports, files and runs."""

from __future__ import annotations

import json

import pytest

import durable_django as durable
from durable_django.core import registry
from durable_django.ops import replay
from durable_django.testing import assert_history, assert_replays, run_workflow
from tests.testapp.workflows import double, echo_workflow, inspectable

pytestmark = [pytest.mark.django_db]


def test_a_matching_history_passes_and_a_workflow_id_will_do():
    run = run_workflow(inspectable, 3)
    assert_history(run, ["step tests.double", "state", "signal ship (scheduled)"])
    assert_history(run.workflow_id, ["step tests.double", "state", "signal ship (scheduled)"])


def test_a_different_history_fails_with_a_diff_of_expected_and_actual():
    run = run_workflow(inspectable, 3, workflow_id="order-3")
    with pytest.raises(AssertionError) as failure:
        assert_history(run, ["step tests.double", "sleep", "signal ship"])
    assert str(failure.value) == (
        "the history of run 'order-3' (tests.inspectable, waiting) is not the expected one (- expected, + actual):\n"
        "  step tests.double\n"
        "- sleep\n"
        "- signal ship\n"
        "+ state\n"
        "+ signal ship (scheduled)"
    )


def test_an_export_replays_as_a_dict_as_a_file_and_as_the_run(tmp_path):
    run = run_workflow(inspectable, 3)
    path = tmp_path / "order.json"
    path.write_text(json.dumps(replay.export(run)))
    assert_replays(replay.export(run))
    assert_replays(path)
    assert_replays(str(path))
    assert_replays(run)


def test_changed_code_fails_the_replay_with_the_non_determinism_message(tmp_path, monkeypatch):
    run = run_workflow(inspectable, 3, workflow_id="order-3")
    path = tmp_path / "order-3.json"
    path.write_text(json.dumps(replay.export(run)))

    @durable.workflow(name="tests.toolkit.inspectable_v2")
    def changed(order_id):
        return (yield double(order_id + 1))

    monkeypatch.setitem(registry._workflows, "tests.inspectable", changed)
    expected = r"order-3\.json: the run 'order-3' \(tests\.inspectable\) does not replay"
    with pytest.raises(AssertionError, match=expected):
        assert_replays(path)
    with pytest.raises(AssertionError, match=r"history recorded step tests\.double"):
        assert_replays(run)


def test_a_file_that_is_not_an_export_is_refused(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(durable.DurableError, match="not a history export"):
        assert_replays(path)


def test_a_completed_run_replays_too():
    run = run_workflow(echo_workflow, 2)
    assert run.status == "completed"
    assert_replays(replay.export(run))
