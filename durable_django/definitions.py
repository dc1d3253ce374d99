"""The ``@workflow`` and ``@step`` decorators and the definitions they return."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from asgiref.sync import sync_to_async
from django.db import models

from .core import codec, registry
from .core.interpreter import in_workflow
from .core.policy import RetryPolicy
from .core.requests import ChildCall, StepCall, encode_arguments
from .exceptions import InvalidRequest, InvalidWorkflowId, WorkflowDefinitionError

if TYPE_CHECKING:
    from .models import WorkflowRun

__all__ = ["QueryFunction", "RunArgs", "RunOptions", "StepDefinition", "WorkflowDefinition", "step", "workflow"]

P = ParamSpec("P")
R = TypeVar("R")


def _default_name(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


@dataclass(frozen=True, eq=False)
class StepDefinition(Generic[P, R]):
    """A registered step. Called inside a workflow it returns a request to yield."""

    func: Callable[P, R]
    name: str
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: timedelta | None = None
    atomic: bool = False
    queue: str | None = None
    heartbeat_timeout: timedelta | None = None
    durable_kind = "step"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Inside a workflow: a :class:`StepCall` to yield. Elsewhere: call the function."""
        if not in_workflow():
            return self.func(*args, **kwargs)
        return StepCall(self.name, encode_arguments(args, kwargs, f"step {self.name!r}"))

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> WorkflowRun:
        """Run this step on its own, with its retries, as a transactional outbox task.

        Commits with the caller's transaction; returns the run that tracks it.
        """
        from . import runs

        return runs.start(registry.enqueued_workflow(self), list(args), dict(kwargs), workflow_id=None)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> WorkflowRun:
        """:meth:`enqueue` for async code; it commits on its own."""
        return await sync_to_async(self.enqueue)(*args, **kwargs)

    @property
    def timeout_seconds(self) -> float:
        from .conf import settings

        return self.timeout.total_seconds() if self.timeout is not None else settings.STEP_TIMEOUT

    @property
    def lease_seconds(self) -> float:
        """How long a claim lasts without news: the timeout, or the heartbeat timeout if shorter, plus grace."""
        from .conf import settings

        silence = self.timeout_seconds
        if self.heartbeat_timeout is not None:
            silence = min(silence, self.heartbeat_timeout.total_seconds())
        return silence + settings.LEASE_GRACE


@dataclass(frozen=True, kw_only=True, slots=True)
class RunOptions:
    """Options of one run that are not the workflow's own arguments; set with ``wf.using(...)``."""

    #: The run's unique id; a random UUID when None. Starting an existing one is idempotent.
    workflow_id: str | None = None
    #: JSON the run carries to be found by: ``WorkflowRun.objects.filter(attributes__customer=42)``.
    attributes: dict[str, Any] | None = None
    #: The saved model instance the run is about: ``WorkflowRun.objects.for_subject(order)``.
    subject: models.Model | None = None


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


#: A named query: ``(state, variables, *args) -> answer``; see :meth:`WorkflowDefinition.query`.
QueryFunction = Callable[..., Any]
Q = TypeVar("Q", bound=QueryFunction)


@dataclass(frozen=True, eq=False)
class WorkflowDefinition(Generic[P]):
    """A registered workflow: a generator function that yields requests."""

    func: Callable[P, Generator[Any, Any, Any]]
    name: str
    options: RunOptions = field(default_factory=RunOptions)
    #: Named queries by name; shared with the definitions ``using()`` returns.
    queries: dict[str, QueryFunction] = field(default_factory=dict, repr=False)

    durable_kind = "workflow"

    def query(self, name: str) -> Callable[[Q], Q]:
        """Register a named query: ``@checkout.query("total")`` over ``def total(state, variables, *args)``.

        ``run.query("total", *args)`` calls it with the run's published state (``run.state``),
        its local variables where it waits (replayed only if the function reads them; empty
        once the run finished) and ``args``, and returns its answer. It runs in the caller's
        process and must not change anything.
        """
        if not isinstance(name, str) or not name or len(name) > 255:
            raise WorkflowDefinitionError(f"{self.name}.query({name!r}) needs a query name of 1 to 255 characters.")

        def register(function: Q) -> Q:
            if not callable(function):
                raise WorkflowDefinitionError(f"@{self.name}.query({name!r}): {function!r} is not a function.")
            existing = self.queries.get(name)
            if existing is not None and _default_name(existing) != _default_name(function):
                raise WorkflowDefinitionError(
                    f"workflow {self.name!r} has two queries named {name!r}: {_default_name(existing)} and "
                    f"{_default_name(function)}; give one of them another name."
                )
            self.queries[name] = function
            return function

        return register

    def using(
        self,
        *,
        workflow_id: str | None = None,
        attributes: dict[str, Any] | None = None,
        subject: models.Model | None = None,
    ) -> WorkflowDefinition[P]:
        """This workflow with per-run options, as Django's ``Task.using()``: ``wf.using(workflow_id="a").start()``.

        ``attributes`` is a JSON object to find the run by; ``subject`` a saved model instance
        the run is about. Returns a new definition; ``self`` is unchanged, and options never
        take a keyword away from the workflow's own signature.
        """
        given: dict[str, Any] = {
            "workflow_id": workflow_id,
            "attributes": None if attributes is None else _checked_attributes(attributes),
            "subject": None if subject is None else _checked_subject(subject),
        }
        return replace(self, options=replace(self.options, **{k: v for k, v in given.items() if v is not None}))

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Inside a workflow: a :class:`ChildCall` to yield. Elsewhere: the plain generator.

        The child's ``workflow_id`` is ``<parent>/<position>`` unless chosen with
        ``other.using(workflow_id=...)``; a chosen id that a run already has raises
        :class:`~durable_django.ChildFailed` (``WorkflowIdConflict``) at the yield.
        """
        if not in_workflow():
            return self.func(*args, **kwargs)
        workflow_id = self.options.workflow_id
        if workflow_id is not None:
            from .runs import check_workflow_id  # workflow code runs with the app registry ready

            check_workflow_id(workflow_id)
        return ChildCall(self.name, encode_arguments(args, kwargs, f"child workflow {self.name!r}"), workflow_id)

    def start(self, *args: Any, workflow_id: str | None = None, **kwargs: Any) -> WorkflowRun:
        """Create a run in the caller's transaction; workers start it once that commits.

        With a ``workflow_id`` that already exists, the existing run is returned and
        nothing new is created.
        """
        from . import runs

        if workflow_id is not None and self.options.workflow_id not in (None, workflow_id):
            raise InvalidWorkflowId(
                f"start(workflow_id={workflow_id!r}) contradicts using(workflow_id={self.options.workflow_id!r}); "
                "give the workflow_id once."
            )
        options = self.options
        return runs.start(
            self,
            list(args),
            dict(kwargs),
            workflow_id=options.workflow_id if workflow_id is None else workflow_id,  # "" is refused, not replaced
            attributes=options.attributes,
            subject=options.subject,
        )

    async def astart(self, *args: Any, workflow_id: str | None = None, **kwargs: Any) -> WorkflowRun:
        """:meth:`start` for async code: the run and its first work item commit on their own.

        Django's ``transaction.atomic`` is sync-only, so an async caller cannot start a run in
        the same transaction as its own writes; put both in one sync function (see the docs).
        """
        return await sync_to_async(self.start)(*args, workflow_id=workflow_id, **kwargs)

    def start_many(self, calls: Iterable[RunArgs | tuple[Any, ...]]) -> list[WorkflowRun]:
        """Start many runs at once, with bulk inserts, in the caller's transaction: :meth:`start` for each.

        Each of ``calls`` is a :class:`RunArgs` (or a tuple of positional arguments). Returns
        the runs in the same order; a ``workflow_id`` that exists returns that run, as
        :meth:`start` does, and the same id twice in ``calls`` is one run. Options set with
        :meth:`using` (``attributes``, ``subject``) apply to every run.
        """
        from . import bulk

        if self.options.workflow_id is not None:
            raise InvalidWorkflowId(
                f"start_many() with using(workflow_id={self.options.workflow_id!r}): one id cannot name many runs; "
                "give each its own with durable.RunArgs(..., workflow_id=...)."
            )
        return bulk.start_many(
            self, (_call(self.name, index, call) for index, call in enumerate(calls)),
            attributes=self.options.attributes, subject=self.options.subject,
        )  # fmt: skip

    async def astart_many(self, calls: Iterable[RunArgs | tuple[Any, ...]]) -> list[WorkflowRun]:
        """:meth:`start_many` for async code: the runs commit on their own."""
        return await sync_to_async(self.start_many)(list(calls))


def _call(name: str, index: int, call: object) -> tuple[tuple[Any, ...], dict[str, Any], str | None]:
    if isinstance(call, RunArgs):
        return call.args, call.kwargs, call.workflow_id
    if isinstance(call, tuple):
        return call, {}, None
    raise InvalidRequest(
        f"{name}.start_many(): run {index} is {call!r}; give each run as durable.RunArgs(*args, workflow_id=..., "
        "**kwargs), or as a tuple of positional arguments."
    )


def _checked_attributes(attributes: object) -> dict[str, Any]:
    if not isinstance(attributes, dict):
        raise InvalidRequest(f"using(attributes={attributes!r}): pass a dict, such as {{'customer': 42}}.")
    decoded: dict[str, Any] = codec.roundtrip(attributes, "using(attributes=...)")[1]
    return decoded


def _checked_subject(subject: object) -> models.Model:
    if not isinstance(subject, models.Model) or subject.pk is None:
        raise InvalidRequest(f"using(subject={subject!r}): pass a saved model instance, such as an Order.")
    return subject


def _refuse_workflow(func: object) -> None:
    if inspect.isasyncgenfunction(func):
        problem = "is an async generator function; workflows are plain generators (def with yield)"
    elif inspect.iscoroutinefunction(func):
        problem = "is an async function; write the workflow as a plain generator: def ...: x = yield step(...)"
    elif inspect.isgenerator(func):
        problem = "is a generator object; decorate the function itself, not the result of calling it"
    elif not callable(func):
        problem = f"is a {type(func).__name__}, not a function"
    elif not inspect.isgeneratorfunction(func):
        problem = "is not a generator function; a workflow must yield its steps: result = yield my_step(...)"
    else:
        return
    raise WorkflowDefinitionError(f"@durable.workflow: {func!r} {problem}.")


def _refuse_step(func: object) -> None:
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        problem = "is a generator function; steps are plain functions (use @durable.workflow for generators)"
    elif inspect.iscoroutinefunction(func):
        problem = "is an async function; steps are plain synchronous functions"
    elif not callable(func):
        problem = f"is a {type(func).__name__}, not a function"
    else:
        return
    raise WorkflowDefinitionError(f"@durable.step: {func!r} {problem}.")


@overload
def workflow(func: Callable[P, Generator[Any, Any, Any]], /) -> WorkflowDefinition[P]: ...
@overload
def workflow(
    *, name: str | None = None
) -> Callable[[Callable[P, Generator[Any, Any, Any]]], WorkflowDefinition[P]]: ...
def workflow(func: Any = None, /, *, name: str | None = None) -> Any:
    """Declare a durable workflow: a generator function that yields step calls."""

    def decorate(function: Callable[P, Generator[Any, Any, Any]]) -> WorkflowDefinition[P]:
        _refuse_workflow(function)
        definition = WorkflowDefinition(func=function, name=name or _default_name(function))
        registry.register_workflow(definition)
        return definition

    return decorate if func is None else decorate(func)


@overload
def step(func: Callable[P, R], /) -> StepDefinition[P, R]: ...
@overload
def step(
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: timedelta | None = None,
    atomic: bool = False,
    queue: str | None = None,
    heartbeat_timeout: timedelta | None = None,
) -> Callable[[Callable[P, R]], StepDefinition[P, R]]: ...
def step(
    func: Any = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy | None = None,
    timeout: timedelta | None = None,
    atomic: bool = False,
    queue: str | None = None,
    heartbeat_timeout: timedelta | None = None,
) -> Any:
    """Declare a step.

    External steps (the default) run outside any transaction, at least once, and get a
    stable idempotency key. ``atomic=True`` steps run inside the transaction that records
    their result, so their database writes happen exactly once.
    """
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise WorkflowDefinitionError(f"@durable.step(retry={retry!r}): pass a durable.RetryPolicy(...).")
    if timeout is not None and (not isinstance(timeout, timedelta) or timeout <= timedelta(0)):
        raise WorkflowDefinitionError(f"@durable.step(timeout={timeout!r}): pass a positive timedelta.")
    if queue is not None and (not isinstance(queue, str) or not queue.strip()):
        raise WorkflowDefinitionError(f"@durable.step(queue={queue!r}): pass a Celery queue name.")
    if heartbeat_timeout is not None and (
        not isinstance(heartbeat_timeout, timedelta) or heartbeat_timeout <= timedelta(0)
    ):
        raise WorkflowDefinitionError(
            f"@durable.step(heartbeat_timeout={heartbeat_timeout!r}): pass a positive timedelta, "
            "shorter than the step's timeout, and call durable.step_context().heartbeat() more often than that."
        )
    if heartbeat_timeout is not None and atomic:
        raise WorkflowDefinitionError(
            "@durable.step(atomic=True, heartbeat_timeout=...): an atomic step runs inside one transaction "
            "and cannot report progress; drop heartbeat_timeout, or make the step external."
        )

    def decorate(function: Callable[P, R]) -> StepDefinition[P, R]:
        _refuse_step(function)
        definition = StepDefinition(
            func=function,
            name=name or _default_name(function),
            retry=retry or RetryPolicy(),
            timeout=timeout,
            atomic=atomic,
            queue=queue,
            heartbeat_timeout=heartbeat_timeout,
        )
        registry.register_step(definition)
        return definition

    return decorate if func is None else decorate(func)
