"""Replaying histories against the current code: before a deploy, and from an export in a test."""

from __future__ import annotations

import json

import pytest

import durable_django as durable
from durable_django.core import registry
from durable_django.ops import replay
from durable_django.testing import run_until_idle
from tests.testapp.workflows import collect, double, inspectable

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_messages")]


def test_a_run_the_code_still_replays_passes_the_check_and_its_export_too():
    run = inspectable.start(5)
    run_until_idle()
    run.refresh_from_db()
    assert run.status == "waiting"
    assert replay.check(run) is None
    document = json.loads(json.dumps(replay.export(run)))  # as it would be stored in a file
    assert [entry["kind"] for entry in document["history"]] == ["step", "state", "signal"]
    assert replay.check_export(document) is None


def test_changed_code_is_caught_by_the_check_and_by_the_export(monkeypatch):
    run = inspectable.start(5)
    run_until_idle()
    run.refresh_from_db()
    document = replay.export(run)

    @durable.workflow(name="tests.inspectable_v2")
    def changed(order_id):
        charge = yield double(order_id + 1)  # new code passes other arguments
        return charge

    monkeypatch.setitem(registry._workflows, "tests.inspectable", changed)
    message = replay.check(run)
    assert message is not None and "history recorded step tests.double" in message
    assert replay.check_export(document) == message


def test_a_run_of_an_unknown_workflow_fails_the_check_naming_it(monkeypatch):
    run = collect.start(1)
    monkeypatch.delitem(registry._workflows, "tests.collect")
    assert "no workflow named 'tests.collect'" in replay.check(run)


def test_a_document_that_is_not_an_export_is_refused():
    with pytest.raises(durable.DurableError, match="not a history export"):
        replay.check_export({"format": "something else"})


def test_a_run_cancelled_by_its_deadline_replays_as_such_in_the_check_and_from_its_export():
    from datetime import timedelta

    from durable_django.testing import pass_time
    from tests.testapp.conversations import deadline_or_cancel

    run = deadline_or_cancel.start()
    run_until_idle()
    pass_time(timedelta(hours=2))
    run.refresh_from_db()
    assert (run.status, run.deadline_exceeded) == ("cancelled", True)
    assert replay.check(run) is None, "replayed with plain Cancelled, the code took the other handler"
    document = json.loads(json.dumps(replay.export(run)))
    assert document["deadline_exceeded"] is True
    assert replay.check_export(document) is None
