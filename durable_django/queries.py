"""Reading a run without changing it: its local variables by replay, and the workflow's named queries.

Both run in the caller's process. A replay runs the workflow's code against the recorded
history with no side effect (a step called there builds a request, nothing runs) and
writes nothing; the replayed generator is thrown away afterwards.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .core import codec, engine
from .core.interpreter import Interpreter
from .core.registry import resolve_workflow
from .core.requests import decode_arguments
from .exceptions import NonDeterminismError, QueryFailed, QueryNotDefined, RunNotFound
from .models import WorkflowRun
from .store import run_info
from .store.history import History
from .store.leases import database

__all__ = ["answer", "local_variables"]


def local_variables(run: WorkflowRun) -> dict[str, Any]:
    """The generator's local variables where the run waits now, as Python values; ``{}`` once it finished."""
    using = database()
    current = (
        WorkflowRun.objects.using(using)
        .filter(pk=run.pk)
        .values_list("status", "workflow_name", "input_json", "next_seq", "deadline_exceeded")
        .first()
    )
    if current is None:
        raise RunNotFound(f"run {run.workflow_id!r} no longer exists.")
    status, name, input_json, next_seq, deadline = current
    if status in WorkflowRun.FINISHED:
        return {}
    args, kwargs = decode_arguments(input_json)
    interpreter = Interpreter(name, resolve_workflow(name).func, args, kwargs)
    history = History(using, run.pk, next_seq)
    run_info.bind(interpreter, using, run.pk, history.time_at)
    try:
        decision = engine.decide(interpreter, history, deadline=deadline)
        if isinstance(decision.end, engine.Block):
            raise NonDeterminismError(decision.end.message)
        return interpreter.local_variables()
    finally:
        interpreter.close()


class _Variables(Mapping[str, Any]):
    """The run's locals, replayed on the first read only: a query of the state alone costs no replay."""

    def __init__(self, load: Callable[[], dict[str, Any]]) -> None:
        self._load = load
        self._values: dict[str, Any] | None = None
        #: Why the replay failed, if it did: reported as itself, not as the query's failure.
        self.failure: Exception | None = None

    def _loaded(self) -> dict[str, Any]:
        if self._values is None:
            try:
                self._values = self._load()
            except Exception as error:
                self.failure = error
                raise
        return self._values

    def __getitem__(self, key: str) -> Any:
        return self._loaded()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._loaded())

    def __len__(self) -> int:
        return len(self._loaded())


def answer(run: WorkflowRun, name: str, args: tuple[Any, ...]) -> Any:
    """What the workflow's query ``name`` computes for ``run`` from its state, its locals and ``args``."""
    current = WorkflowRun.objects.using(database()).filter(pk=run.pk).values_list("workflow_name", "state_json").first()
    if current is None:
        raise RunNotFound(f"run {run.workflow_id!r} no longer exists.")
    workflow_name, state_json = current
    queries: Mapping[str, Callable[..., Any]] = getattr(resolve_workflow(workflow_name), "queries", {})
    function = queries.get(name)
    if function is None:
        known = ", ".join(repr(known) for known in sorted(queries)) or "none"
        close = difflib.get_close_matches(name, list(queries), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise QueryNotDefined(
            f"workflow {workflow_name!r} has no query {name!r}; its queries: {known}.{hint} "
            f"Define one with @{workflow_name.rsplit('.', 1)[-1]}.query({name!r}); run.query() with no name "
            "gives the local variables."
        )
    state = None if state_json is None else codec.decode(state_json)  # decoded for this call alone
    variables = _Variables(lambda: local_variables(run))
    try:
        return function(state, variables, *args)
    except Exception as error:
        if variables.failure is not None:  # the replay failed, not the query: say that
            raise variables.failure from None
        raise QueryFailed(
            f"query {name!r} of run {run.workflow_id!r} raised {type(error).__name__}: {error}"
        ) from error
