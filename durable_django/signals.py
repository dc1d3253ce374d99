"""Django signals about runs and steps, sent once the transaction that caused them commits.

Receivers get keyword arguments: ``run_id`` (UUID), ``workflow_id`` and ``workflow``
(the registered name) always; ``status`` and ``error`` (a dict, or None) for run
endings; ``step``, ``seq``, ``attempt``, ``error`` and ``final`` (no retry follows)
for ``step_failed``. The sender is the ``WorkflowRun`` class.

Connect with ``@receiver(durable_django.signals.run_failed)``. A receiver that raises is
logged and does not disturb the run (they are sent robustly, after commit).
"""

from __future__ import annotations

from django.dispatch import Signal

__all__ = ["run_blocked", "run_cancelled", "run_completed", "run_failed", "run_started", "step_failed"]

run_started = Signal()
run_completed = Signal()
run_failed = Signal()
run_cancelled = Signal()
run_blocked = Signal()
step_failed = Signal()
