"""The one registered workflow that runs any program, and the steps programs call.

Discovered like any app's ``workflows.py`` (``tests.conformance`` is an installed app), so a
real worker has them too. A step's behaviour is decided by its arguments and its attempt
number; each attempt reports itself to the :mod:`.journal` (start and end), and an atomic
step also writes a row in its own transaction, so "which steps ran how often" and "an
atomic step's write commits once" can both be checked.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator
from datetime import timedelta
from typing import Any

from django.db.models import F

import durable_django as durable
from tests.testapp.models import Counter

from . import journal
from .program import POLICIES, VALIDATED, Program, Stmt, refusal
from .walker import Outcome, walk

WORKFLOW = "conformance.program"
#: How long each step attempt takes (seconds), set for ``make fuzz``'s worker; 0 in-process.
STEP_SECONDS = "CONFORMANCE_STEP_SECONDS"


class Boom(Exception):
    """A step attempt that fails (retried per the step's policy)."""


class Fatal(Exception):
    """A step attempt that fails for good, whatever attempts are left."""


def atomic_row(key: str) -> str:
    """The name of the row an atomic step writes, keyed by its idempotency key."""
    return f"cf:{key}"


def _while_running() -> None:
    """Give the system the time to act on what just happened while this attempt still holds its lease.

    With a real worker, another pool process takes the cancel's advance meanwhile. In-process
    (the inline test), this thread does: the nested ``run_until_idle()`` is that other worker.
    """
    if os.environ.get(journal.ENV):
        time.sleep(1.0)
        return
    from durable_django.testing import run_until_idle

    run_until_idle()


def _make_step(kind: str, policy: str) -> durable.StepDefinition[[str, list[Any]], str]:
    def body(tag: str, do: list[Any]) -> str:
        context = durable.step_context()
        attempt = context.attempt
        record = {
            "t": "attempt",
            "tag": tag,
            "n": attempt,
            "key": context.idempotency_key,
            "kind": kind,
            "policy": policy,
        }
        journal.write({**record, "phase": "start"})
        time.sleep(float(os.environ.get(STEP_SECONDS, 0)))  # a real worker's kills then land mid-step too
        if do[0] == "cancels":  # the run's cancel lands while this attempt runs
            durable.cancel(context.workflow_id)
            _while_running()
            do = do[1:]
        verdict = do[0]
        if verdict == "fatal":
            journal.write({**record, "phase": "end", "ok": False, "fatal": True})
            raise Fatal(f"{tag} attempt {attempt}: fatal")
        if verdict == "fail" or (verdict == "flaky" and attempt <= do[1]):
            journal.write({**record, "phase": "end", "ok": False, "fatal": False})
            raise Boom(f"{tag} attempt {attempt}: boom")
        if kind == "atomic":  # inside the transaction that records the result: commits once
            name = atomic_row(context.idempotency_key)
            Counter.objects.get_or_create(name=name)
            Counter.objects.filter(name=name).update(value=F("value") + 1)
        journal.write({**record, "phase": "end", "ok": True})
        return f"{tag}@{attempt}"

    spec = POLICIES[policy]
    retry = durable.RetryPolicy(
        max_attempts=spec.max_attempts,
        initial_interval=timedelta(seconds=spec.first_delay),
        backoff_coefficient=spec.coefficient,
        maximum_interval=timedelta(days=1),
        non_retryable=(Fatal,),
    )
    return durable.step(name=f"conformance.{kind}.{policy}", retry=retry, atomic=kind == "atomic")(body)


STEPS = {(kind, policy): _make_step(kind, policy) for kind in ("external", "atomic") for policy in POLICIES}


class _Engine:
    """The walker's vocabulary for the real engine: durable_django's requests and exceptions."""

    errors: dict[str, type[BaseException]] = {
        "DeadlineExceeded": durable.DeadlineExceeded,
        "StepFailed": durable.StepFailed,
        "ChildFailed": durable.ChildFailed,
        "Cancelled": durable.Cancelled,
    }

    def step(self, stmt: Stmt, tag: str) -> Any:
        return STEPS[(stmt["kind"], stmt["policy"])](tag, stmt["do"])

    def sleep(self, seconds: int) -> Any:
        return durable.sleep(timedelta(seconds=seconds))

    def wait(self, name: str, timeout: int | None) -> Any:
        return durable.wait_signal(name, timeout=None if timeout is None else timedelta(seconds=timeout))

    def wait_update(self, name: str, timeout: int | None, default: Any) -> Any:
        return durable.wait_update(name, None if timeout is None else timedelta(seconds=timeout), default=default)

    def answer(self, request: Any, verdict: str, text: str) -> Any:
        return durable.reply(request, text) if verdict == "reply" else durable.reject(request, text)

    def update_id(self, value: Any) -> str | None:
        return value.update_id if isinstance(value, durable.UpdateRequest) else None

    def plain(self, value: Any) -> Any:
        if isinstance(value, durable.UpdateRequest):
            return ["update", value.update_id, value.name, value.payload]
        return [self.plain(item) for item in value] if isinstance(value, list) else value

    def child(self, program: Program, scope: str, timeout: int | None) -> Any:
        code = program_workflow if timeout is None else program_workflow.using(timeout=timedelta(seconds=timeout))
        return code(program, scope, 0)

    def all_of(self, leaves: list[Any]) -> Any:
        return durable.all_of(*leaves)

    def any_of(self, leaves: list[Any]) -> Any:
        return durable.any_of(*leaves)

    def patched(self, change: str) -> Any:
        return durable.patched(change)

    def set_state(self, value: str) -> Any:
        return durable.set_state(value)

    def info(self) -> list[Any]:
        info = durable.workflow_info()
        parent = None if info.parent_workflow_id is None else relative_id(info.parent_workflow_id)
        return [
            info.position,
            info.history_length,
            info.generation,
            relative_id(info.workflow_id),
            parent,
            info.continue_as_new_suggested,
        ]

    def continue_as_new(self, program: Program, scope: str, gen: int) -> Any:
        return durable.continue_as_new(program, scope, gen)

    def observe(self, scope: str, gen: int, index: int, outcome: Outcome, steps: list[str]) -> None:
        journal.write({"t": "yield", "scope": scope, "gen": gen, "i": index, "o": outcome, "steps": steps})


ENGINE = _Engine()


def relative_id(workflow_id: str) -> str:
    """A run's ``workflow_id`` with its program's root id written ``~`` (root ids hold no ``/``)."""
    return "~" + workflow_id[workflow_id.index("/") :] if "/" in workflow_id else "~"


@durable.workflow(name=WORKFLOW)
def program_workflow(program: Program, scope: str, gen: int) -> Generator[Any, Any, dict[str, Any]]:
    """Run ``program`` as the run named ``scope``, in generation ``gen``."""
    return (yield from walk(program, scope, gen, ENGINE))


@program_workflow.validator(VALIDATED)
def _validate(state: Any, payload: Any) -> None:
    reason = refusal(state, payload)
    if reason is not None:
        raise ValueError(reason)
