"""Drive the real system in-process with ``durable_django.testing``: one event, then ``run_until_idle()``.

Deterministic: steps run synchronously in this thread, and time passes only through
``pass_time``. Two ways to hold the database:

- ``committed=True`` (a transactional test): every transaction commits, as on a worker, so
  advances keep live generators in the cache and the ``cache`` event's loss of them
  matters; wake-up messages stay in the process (``no_broker``). The tables are emptied
  after the case.
- ``committed=False`` (inside a test's transaction): the case runs in a savepoint that is
  rolled back. Nothing commits, so the generator cache is never filled: every advance
  replays the history from the start.
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

import durable_django as durable
from durable_django import updates
from durable_django.models import WorkflowRun, WorkItem
from durable_django.store import generator_cache
from durable_django.testing import no_broker, pass_time, run_until_idle
from tests.testapp.models import Counter

from . import journal, realtime
from .compare import differences
from .model import SUGGESTED_AFTER, Event, predict
from .observe import Observed, observe
from .program import Program
from .workflows import WORKFLOW, program_workflow

ROOT = "R"


class _Rollback(Exception):
    pass


def run_inline(program: Program, events: list[Event], root: str = ROOT, *, committed: bool = True) -> Observed:
    """Start ``program``, apply ``events`` one by one, and read back what happened."""
    journal.reset()
    generator_cache.clear()
    if committed:
        try:
            with no_broker():
                return _drive(program, events, root)
        finally:
            generator_cache.clear()
            empty_tables()
    result: list[Observed] = []
    try:
        with transaction.atomic():
            result.append(_drive(program, events, root))
            raise _Rollback
    except _Rollback:
        pass
    finally:
        generator_cache.clear()  # generators of runs that were rolled back
    return result[0]


def _drive(program: Program, events: list[Event], root: str) -> Observed:
    run = start(program, root, f"conformance-{uuid.uuid4().hex[:12]}")
    run_until_idle()
    replies = []
    for event in events:
        replies.append(apply(event, run, root))
        run_until_idle()
    run.refresh_from_db()
    return observe(run, replies, journal.read(), sent=sent_updates(events, root))


def start(program: Program, root: str, workflow_id: str) -> WorkflowRun:
    """Start the program's root run, with its deadline if it has one (``wf.using(timeout=...)``)."""
    code = program_workflow
    if program.get("timeout") is not None:
        code = code.using(timeout=timedelta(seconds=program["timeout"]))
    return code.start(program, root, 0, workflow_id=workflow_id)


def sent_updates(events: list[Event], root: str) -> dict[str, str]:
    """Each update event's id -> the scope of the run it went to."""
    return {event["id"]: root + event["to"] for event in events if event["ev"] == "update"}


def suggest_after() -> int:
    """The setting ``workflow_info().continue_as_new_suggested`` follows here, for the model."""
    return int(getattr(settings, "DURABLE_CONTINUE_AS_NEW_SUGGESTED_AFTER", SUGGESTED_AFTER))


def empty_tables() -> None:
    """Every run, work item and atomic row gone: the next case starts from nothing."""
    WorkItem.objects.all().delete()
    WorkflowRun.objects.all().delete()  # their history and signals go with them
    Counter.objects.filter(name__startswith="cf:").delete()


def find(scope: str, root: WorkflowRun) -> WorkflowRun | None:
    """The run of this program named ``scope`` (its second argument), if it exists."""
    if scope == root_scope(root):
        return root
    needle = json.dumps(scope)
    runs = WorkflowRun.objects.filter(workflow_id__startswith=root.workflow_id, workflow_name=WORKFLOW)
    for candidate in runs.filter(input_json__contains=needle):
        if json.loads(candidate.input_json)["args"][1] == scope:
            return candidate
    return None


def root_scope(root: WorkflowRun) -> str:
    return str(json.loads(root.input_json)["args"][1])


def apply(event: Event, root: WorkflowRun, root_name: str) -> str:
    """Apply one event; the reply says whether a signal or cancel was taken ("ok"), refused or had no run."""
    kind = event["ev"]
    if kind == "time":
        pass_time(timedelta(seconds=event["seconds"]))
        return "ok"
    if kind == "cache":
        generator_cache.clear()
        return "ok"
    return deliver(event, root, root_name)


def deliver(event: Event, root: WorkflowRun, root_name: str) -> str:
    """Send a ``signal``, ``update`` or ``cancel`` event to its run: "ok", "finished" (RunFinished), "absent",
    or "rejected:<reason>" (an update its validator refused).

    An update is sent as ``run.update()`` sends it, without waiting for the answer: its caller's
    outcome is read from the database at the end (:func:`.observe.caller_gets`).
    """
    kind = event["ev"]
    target = find(root_name + event["to"], root)
    if target is None:
        return "absent"
    try:
        if kind == "signal":  # several at once: in one transaction, as a worker beside us must see them
            with transaction.atomic():
                for name, payload in event["signals"]:
                    durable.signal(target, name, payload)
        elif kind == "update":
            updates.send(target, event["name"], event["payload"], update_id=event["id"])
        else:
            durable.cancel(target)
    except durable.RunFinished:
        return "finished"
    except durable.UpdateRejected as error:
        return f"rejected:{error.reason}"
    if event.get("late"):  # timers come due before any worker looks at the signals
        realtime.shift(root.workflow_id, timedelta(seconds=event["late"]))
    return "ok"


def check(program: Program, events: list[Event], *, committed: bool = True) -> tuple[list[str], Any]:
    """Run the case on the real system and in the model; the disagreements and the prediction."""
    expected = predict(program, events, ROOT, suggest_after=suggest_after())
    actual = run_inline(program, events, committed=committed)
    return differences(expected, actual), expected
