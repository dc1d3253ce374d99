"""Starting many runs at once: ``wf.start_many()``, with bulk inserts, in the caller's transaction.

The same contract as ``start()`` for each run (arguments checked at the call site, the run
and its first work item commit with the caller's rows or not at all, a ``workflow_id``
that exists returns its run), at the cost of a few statements for the lot: one read of
the ids that exist, one insert of the runs, one of their work items. The wake-up messages
go out after the commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from django.db import IntegrityError, models, transaction

from .core import codec
from .core.registry import WorkflowCode
from .core.requests import encode_arguments
from .exceptions import WorkflowIdConflict
from .models import WorkflowRun, WorkItem
from .runs import check_same_start, check_workflow_id, refuse_inside_workflow, refuse_other_database, start
from .store import observe, outbox
from .store.clock import Now
from .store.leases import database

__all__ = ["Call", "start_many"]

#: One run to start: positional arguments, keyword arguments, its workflow_id (None: a new UUID).
Call = tuple[Sequence[Any], dict[str, Any], str | None]
#: Rows one INSERT or one ``IN (...)`` carries at most.
_CHUNK = 1000
#: First advances one wake-up message names at most.
_PER_MESSAGE = 10


def start_many(
    definition: WorkflowCode,
    calls: Iterable[Call],
    *,
    attributes: dict[str, Any] | None = None,
    subject: models.Model | None = None,
) -> list[WorkflowRun]:
    """Create the runs of ``calls`` and their first work items; returns the runs in the order of ``calls``."""
    name = definition.name
    refuse_inside_workflow("start_many()", f"yield {name.rsplit('.', 1)[-1]}(...) runs one as a child")
    calls = list(calls)
    wanted: list[tuple[str, str]] = []  # (workflow_id, input_json) per call
    for index, (args, kwargs, workflow_id) in enumerate(calls):
        input_json = encode_arguments(list(args), dict(kwargs), f"workflow {name!r} (run {index} of start_many)")
        wanted.append((check_workflow_id(workflow_id), input_json))
    first: dict[str, str] = {}
    for workflow_id, input_json in wanted:
        earlier = first.setdefault(workflow_id, input_json)
        if earlier != input_json and codec.decode(earlier) != codec.decode(input_json):
            raise WorkflowIdConflict(
                f"start_many() got workflow_id {workflow_id!r} twice, with {earlier} and {input_json}; "
                "one id names one run: give the other run another workflow_id."
            )
    using = database()
    refuse_other_database(using, "start_many()")
    linked = {} if subject is None else {"subject_type": subject._meta.label_lower, "subject_id": str(subject.pk)}
    with transaction.atomic(using=using):
        runs = _existing(using, list(first))
        for workflow_id, run in runs.items():
            check_same_start(run, name, workflow_id, first[workflow_id])
        new = [
            WorkflowRun(
                workflow_id=workflow_id,
                workflow_name=name,
                input_json=input_json,
                attributes=attributes or {},
                **linked,
            )
            for workflow_id, input_json in first.items()
            if workflow_id not in runs
        ]
        try:
            with transaction.atomic(using=using):  # a savepoint: a concurrent start may take an id meanwhile
                WorkflowRun.objects.using(using).bulk_create(new, batch_size=_CHUNK)
        except IntegrityError:
            # Another transaction committed one of these ids since the read: one by one, as start() does it.
            return [start(definition, list(args), dict(kwargs), workflow_id) for args, kwargs, workflow_id in calls]
        items = WorkItem.objects.using(using).bulk_create(
            [WorkItem(run_id=run.pk, kind=WorkItem.Kind.ADVANCE, dispatched_at=Now()) for run in new],
            batch_size=_CHUNK,
        )
        transaction.on_commit(partial(_publish, [item.pk for item in items]), using=using, robust=True)
        for run in new:
            observe.run_started(using, run.pk, run.workflow_id, name)
            runs[run.workflow_id] = run
    return [runs[workflow_id] for workflow_id, _ in wanted]


def _existing(using: str, workflow_ids: list[str]) -> dict[str, WorkflowRun]:
    found: dict[str, WorkflowRun] = {}
    for start_at in range(0, len(workflow_ids), _CHUNK):
        chunk = workflow_ids[start_at : start_at + _CHUNK]
        found.update((run.workflow_id, run) for run in WorkflowRun.objects.using(using).filter(workflow_id__in=chunk))
    return found


def _publish(item_ids: list[int]) -> None:
    # A few items to a message: fewer messages to send, and still every pool process gets a share.
    for start_at in range(0, len(item_ids), _PER_MESSAGE):
        chunk = item_ids[start_at : start_at + _PER_MESSAGE]
        if len(chunk) == 1:
            outbox.publish(chunk[0], "")
        else:
            outbox.publish_many(chunk, "")
