"""Test your workflows in an ordinary Django test, without Celery and without waiting.

- :func:`run_workflow` starts a run and works it in the test's own process until nothing
  is left to do now; :func:`send_signal` does the same after a signal, :func:`send_update` after an update (and
  returns the reply).
- :func:`pass_time` lets time pass for every timer, retry wait and schedule tick, so a
  30-day sleep takes no time; :func:`advance_time` only moves them (for tests with a real
  worker). :func:`sync_schedules` writes the schedules the code declares to the test
  database, as a worker does when it starts.
- :func:`assert_history` compares a run's history with the expected one and shows a diff;
  :func:`assert_replays` replays a recorded history (an export) against the current code.

All of it works inside a ``django.test.TestCase`` (whose transaction never commits, so
no wake-up message is ever sent) as well as in a transactional test, where
:func:`no_broker` keeps the messages in the process. The pytest plugin
``durable_django.testing.pytest`` has the same as a fixture.
"""

from __future__ import annotations

from ._assertions import assert_history, assert_replays
from ._clock import advance_time, pass_time, sync_schedules
from ._inline import no_broker, run_until_idle, run_workflow, send_signal, send_update

__all__ = [
    "Toolkit",
    "advance_time",
    "assert_history",
    "assert_replays",
    "no_broker",
    "pass_time",
    "run_until_idle",
    "run_workflow",
    "send_signal",
    "send_update",
    "sync_schedules",
]


class Toolkit:
    """These helpers under short names: what the pytest fixture ``durable_env`` gives a test."""

    run = staticmethod(run_workflow)
    signal = staticmethod(send_signal)
    update = staticmethod(send_update)
    pass_time = staticmethod(pass_time)
    sync_schedules = staticmethod(sync_schedules)
    run_until_idle = staticmethod(run_until_idle)
    assert_history = staticmethod(assert_history)
    assert_replays = staticmethod(assert_replays)
