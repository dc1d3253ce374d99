"""Per-run options: what ``wf.using(...)`` sets, and one run's arguments for ``wf.start_many()``.

Options that are not the workflow's own arguments travel apart from them, as Django's
``Task.using()`` does for tasks, so a new option never takes a keyword from a workflow's
signature.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import models

from .core import codec
from .exceptions import InvalidRequest

__all__ = ["RunArgs", "RunOptions", "checked_attributes", "checked_subject", "run_call"]


@dataclass(frozen=True, kw_only=True, slots=True)
class RunOptions:
    """Options of one run that are not the workflow's own arguments; set with ``wf.using(...)``."""

    #: The run's unique id; a random UUID when None. Starting an existing one is idempotent.
    workflow_id: str | None = None
    #: JSON the run carries to be found by: ``WorkflowRun.objects.filter(attributes__customer=42)``.
    attributes: dict[str, Any] | None = None
    #: The saved model instance the run is about: ``WorkflowRun.objects.for_subject(order)``.
    subject: models.Model | None = None
    #: How long the run may take before ``DeadlineExceeded`` is raised in it; the workflow's ``timeout`` if None.
    timeout: timedelta | None = None


class RunArgs:
    """One run's arguments for ``wf.start_many()``: what ``wf.start()`` would take.

    ``durable.RunArgs(order.pk, 1999, workflow_id=f"order-{order.pk}")``; a plain tuple
    stands for positional arguments alone.
    """

    __slots__ = ("args", "kwargs", "workflow_id")

    def __init__(self, *args: Any, workflow_id: str | None = None, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs
        self.workflow_id = workflow_id

    def __repr__(self) -> str:
        shown = [repr(arg) for arg in self.args] + [f"{key}={value!r}" for key, value in self.kwargs.items()]
        if self.workflow_id is not None:
            shown.append(f"workflow_id={self.workflow_id!r}")
        return f"RunArgs({', '.join(shown)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunArgs):
            return NotImplemented
        return (self.args, self.kwargs, self.workflow_id) == (other.args, other.kwargs, other.workflow_id)

    __hash__ = None  # type: ignore[assignment]  # holds the caller's (mutable) arguments


def run_call(name: str, index: int, call: object) -> tuple[tuple[Any, ...], dict[str, Any], str | None]:
    if isinstance(call, RunArgs):
        return call.args, call.kwargs, call.workflow_id
    if isinstance(call, tuple):
        return call, {}, None
    raise InvalidRequest(
        f"{name}.start_many(): run {index} is {call!r}; give each run as durable.RunArgs(*args, workflow_id=..., "
        "**kwargs), or as a tuple of positional arguments."
    )


def checked_attributes(attributes: object) -> dict[str, Any]:
    if not isinstance(attributes, dict):
        raise InvalidRequest(f"using(attributes={attributes!r}): pass a dict, such as {{'customer': 42}}.")
    decoded: dict[str, Any] = codec.roundtrip(attributes, "using(attributes=...)")[1]
    return decoded


def checked_subject(subject: object) -> models.Model:
    if not isinstance(subject, models.Model) or subject.pk is None:
        raise InvalidRequest(f"using(subject={subject!r}): pass a saved model instance, such as an Order.")
    return subject
