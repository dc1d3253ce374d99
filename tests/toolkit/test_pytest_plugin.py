"""The pytest fixture ``durable_env``, and ``no_broker`` in transactional tests."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from durable_django.store import outbox
from durable_django.testing import no_broker, pass_time, run_workflow
from tests.testapp.workflows import collect, echo_workflow, nap


@pytest.fixture
def sent(monkeypatch):
    """Wake-up messages that reach Celery."""
    messages = []
    monkeypatch.setattr(outbox, "send_message", lambda item_id, options: messages.append((item_id,)))
    return messages


def test_the_fixture_runs_signals_and_passes_time(durable_env, sent):
    run = durable_env.run(collect, 1)
    run = durable_env.signal(run, "item", "x")
    assert run.result == ["x"]
    sleeper = durable_env.run(nap, 3600, "plugin")
    durable_env.pass_time(timedelta(hours=1))
    sleeper.refresh_from_db()
    assert sleeper.status == "completed"
    durable_env.assert_history(sleeper, ["sleep", "step tests.bump"])
    durable_env.assert_replays(sleeper)
    assert sent == []


@pytest.mark.django_db(transaction=True)
def test_the_fixture_keeps_messages_in_the_process_when_transactions_commit(durable_env, sent):
    run = durable_env.run(echo_workflow, 2)
    assert run.status == "completed"
    assert sent == []


@pytest.mark.django_db(transaction=True)
def test_no_broker_keeps_messages_that_committed_work_would_send(sent):
    with no_broker():
        run = run_workflow(nap, 60, "committed")
        pass_time(timedelta(minutes=1))
    run.refresh_from_db()
    assert run.status == "completed"
    assert sent == []
    run_workflow(echo_workflow, 1)  # outside: messages go to Celery again
    assert sent


@pytest.mark.django_db
def test_time_passes_forward_only():
    with pytest.raises(ValueError, match="only passes forward"):
        pass_time(timedelta(seconds=-1))


def test_the_toolkit_does_not_need_pytest():
    code = (
        "import sys, django; django.setup(); import durable_django.testing; "
        "assert 'pytest' not in sys.modules, 'durable_django.testing imported pytest'"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
