"""The ``@workflow`` and ``@step`` decorators and the definitions they return."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from asgiref.sync import sync_to_async
from django.db import models

from .core import registry
from .core.durations import run_timeout
from .core.interpreter import in_workflow
from .core.policy import RetryPolicy
from .core.requests import ChildCall, StepCall, encode_arguments
from .exceptions import InvalidRequest, InvalidWorkflowId, WorkflowDefinitionError
from .run_options import RunArgs, RunOptions, checked_attributes, checked_subject, run_call

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


#: A named query: ``(state, variables, *args) -> answer``; see :meth:`WorkflowDefinition.query`.
QueryFunction = Callable[..., Any]
Q = TypeVar("Q", bound=QueryFunction)


@dataclass(frozen=True, eq=False)
class WorkflowDefinition(Generic[P]):
    """A registered workflow: a generator function that yields requests."""

    func: Callable[P, Generator[Any, Any, Any]]
    name: str
    options: RunOptions = field(default_factory=RunOptions)
    #: Every run's time limit (``@durable.workflow(timeout=...)``); ``using(timeout=...)`` sets one run's.
    timeout: timedelta | None = None
    #: Named queries by name; shared with the definitions ``using()`` returns.
    queries: dict[str, QueryFunction] = field(default_factory=dict, repr=False)
    #: Update validators by update name (``@wf.validator(name)``); shared like ``queries``.
    validators: dict[str, QueryFunction] = field(default_factory=dict, repr=False)

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

    def validator(self, name: str) -> Callable[[Q], Q]:
        """Register update ``name``'s validator: ``@checkout.validator("apply_coupon")`` over ``def (state, payload)``.

        ``run.update(name, payload)`` calls it in the caller's process, with the run's published
        state (``run.state``) and the payload, before anything is sent: if it raises, the update is
        rejected (``UpdateRejected`` with the error's message) and leaves no trace in the run. It
        must not change anything.
        """
        if not isinstance(name, str) or not name or len(name) > 255:
            raise WorkflowDefinitionError(
                f"{self.name}.validator({name!r}) needs an update name of 1 to 255 characters."
            )

        def register(function: Q) -> Q:
            if not callable(function):
                raise WorkflowDefinitionError(f"@{self.name}.validator({name!r}): {function!r} is not a function.")
            self.validators[name] = function
            return function

        return register

    def start_and_update(
        self,
        name: str,
        payload: Any = None,
        *,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        timeout: float | timedelta = 30.0,
        update_id: str | None = None,
    ) -> Any:
        """Start the run (``using(workflow_id=...)`` finds an existing one) and send it update ``name``; the reply.

        The start and the update commit together, then the reply is awaited as with ``run.update()``.
        ``args`` and ``kwargs`` are the workflow's own arguments.
        """
        from . import updates

        arguments = (list(args), dict(kwargs or {}))
        return updates.start_and_update(self, *arguments, name, payload, timeout=timeout, update_id=update_id)

    async def astart_and_update(self, name: str, payload: Any = None, **options: Any) -> Any:
        """:meth:`start_and_update` for async code (same keywords); it commits on its own."""
        return await sync_to_async(self.start_and_update)(name, payload, **options)

    def using(
        self,
        *,
        workflow_id: str | None = None,
        attributes: dict[str, Any] | None = None,
        subject: models.Model | None = None,
        timeout: timedelta | None = None,
    ) -> WorkflowDefinition[P]:
        """This workflow with per-run options, as Django's ``Task.using()``: ``wf.using(workflow_id="a").start()``.

        ``attributes`` is a JSON object to find the run by; ``subject`` a saved model instance
        the run is about; ``timeout`` a positive ``timedelta`` after which ``DeadlineExceeded``
        is raised in the run (this run's, instead of the workflow's). Returns a new definition;
        ``self`` is unchanged, and options never take a keyword away from the workflow's own signature.
        """
        given: dict[str, Any] = {
            "workflow_id": workflow_id,
            "attributes": None if attributes is None else checked_attributes(attributes),
            "subject": None if subject is None else checked_subject(subject),
            "timeout": None if timeout is None else run_timeout(timeout, "using(timeout=...)"),
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
        timeout = self.options.timeout or self.timeout
        arguments = encode_arguments(args, kwargs, f"child workflow {self.name!r}")
        return ChildCall(self.name, arguments, workflow_id, None if timeout is None else timeout.total_seconds())

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
        timeout = options.timeout or self.timeout
        return runs.start(
            self,
            list(args),
            dict(kwargs),
            workflow_id=options.workflow_id if workflow_id is None else workflow_id,  # "" is refused, not replaced
            attributes=options.attributes,
            subject=options.subject,
            timeout=None if timeout is None else timeout.total_seconds(),
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
            self, (run_call(self.name, index, call) for index, call in enumerate(calls)),
            attributes=self.options.attributes, subject=self.options.subject,
        )  # fmt: skip

    async def astart_many(self, calls: Iterable[RunArgs | tuple[Any, ...]]) -> list[WorkflowRun]:
        """:meth:`start_many` for async code: the runs commit on their own."""
        return await sync_to_async(self.start_many)(list(calls))


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
    *, name: str | None = None, timeout: timedelta | None = None
) -> Callable[[Callable[P, Generator[Any, Any, Any]]], WorkflowDefinition[P]]: ...
def workflow(func: Any = None, /, *, name: str | None = None, timeout: timedelta | None = None) -> Any:
    """Declare a durable workflow: a generator function that yields step calls.

    ``timeout``: how long each run may take; past it, ``DeadlineExceeded`` (a ``Cancelled``)
    is raised at the run's current yield. ``wf.using(timeout=...)`` sets one run's instead.
    """
    if timeout is not None:
        try:
            run_timeout(timeout, "@durable.workflow(timeout=...)")
        except InvalidRequest as error:
            raise WorkflowDefinitionError(str(error)) from None

    def decorate(function: Callable[P, Generator[Any, Any, Any]]) -> WorkflowDefinition[P]:
        _refuse_workflow(function)
        definition = WorkflowDefinition(func=function, name=name or _default_name(function), timeout=timeout)
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
