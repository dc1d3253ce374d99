"""Every error about a workflow, a run or a request derives from :class:`DurableError`.

(A helper's argument of the wrong kind is Python's own error, as the standard library's are:
``pass_time(timedelta(-1))`` raises ``ValueError``, ``prune(batch_size=0)`` too.)

Each class also inherits the matching stdlib (or Django) type where one fits, so callers can
catch ``ValueError``, ``LookupError`` or ``ObjectDoesNotExist`` without knowing this package.

One naming rule: a name says the condition, so ``except`` clauses read as sentences.
``Invalid<Thing>`` is bad input refused where it was given (``InvalidRequest``,
``InvalidYield``, ``InvalidWorkflowId``, ``InvalidRunState``, ``InvalidSchedule``);
``<Thing><What happened>`` is an outcome (``StepFailed``, ``ChildFailed``, ``RunFailed``, ``StepTimeout``,
``WaitTimeout``, ``WorkerLost``, ``LeaseLost``, ``RunFinished``, ``RunNotFound``, ``WorkflowNotRegistered``,
``WorkflowIdConflict``, ``QueryNotDefined``, ``QueryFailed``, ``PayloadTooLarge``, ``Cancelled``). The names
ending in ``Error`` name a family of problems, each kind of which the message spells out:
the root ``DurableError``, ``SerializationError`` (any value JSON cannot hold),
``NonDeterminismError`` (any way replay can diverge) and ``WorkflowDefinitionError`` (any
misuse of the decorators). Stored runs record these names (``run.error["type"]``), so they
do not change.
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist

__all__ = [
    "Cancelled",
    "ChildFailed",
    "DeadlineExceeded",
    "DurableError",
    "InvalidRequest",
    "InvalidRunState",
    "InvalidSchedule",
    "InvalidWorkflowId",
    "InvalidYield",
    "LeaseLost",
    "NonDeterminismError",
    "PayloadTooLarge",
    "QueryFailed",
    "QueryNotDefined",
    "RemoteFailure",
    "RemoteTraceback",
    "RunFailed",
    "RunFinished",
    "RunNotFound",
    "SerializationError",
    "StepContextUnavailable",
    "StepFailed",
    "StepTimeout",
    "UpdateRejected",
    "UpdateTimeout",
    "WaitTimeout",
    "WorkerLost",
    "WorkflowContextUnavailable",
    "WorkflowDefinitionError",
    "WorkflowIdConflict",
    "WorkflowNotRegistered",
]


class DurableError(Exception):
    """Base class for durable_django errors."""


class WorkflowDefinitionError(DurableError, TypeError):
    """A decorated object cannot be a workflow or a step."""


class WorkflowNotRegistered(DurableError, LookupError):
    """No workflow or step is registered under the stored name."""


class WorkflowIdConflict(DurableError, ValueError):
    """The workflow id is already used by a run of another workflow."""


class RunNotFound(DurableError, ObjectDoesNotExist, LookupError):
    """No run matches the given id (also Django's ``ObjectDoesNotExist``)."""


class InvalidRunState(DurableError, ValueError):
    """The run's status does not allow this: resuming a run that is not blocked, retrying one that did not fail."""


class RunFinished(InvalidRunState):
    """The run is completed, failed or cancelled, so it cannot take a signal or a cancel."""


class QueryNotDefined(DurableError, LookupError):
    """The run's workflow defines no query of that name (the message lists the ones it defines)."""


class QueryFailed(DurableError):
    """A named query raised; the query's own exception is the ``__cause__``."""


class StepContextUnavailable(DurableError, RuntimeError):
    """``durable.step_context()`` was called outside a step that a worker is running."""


class WorkflowContextUnavailable(DurableError, RuntimeError):
    """``durable.workflow_info()``, ``now()`` or ``uuid4()`` was called outside workflow code that is running."""


class InvalidWorkflowId(DurableError, ValueError):
    """A ``workflow_id`` that is not 1 to 255 printable characters."""


class InvalidYield(DurableError, TypeError):
    """The workflow yielded something that is not a request."""


class WorkerLost(DurableError):
    """The process running a step's last attempt died before it reported (its lease expired)."""


class LeaseLost(DurableError):
    """A step attempt's heartbeat found it no longer holds the step: another attempt took over."""


class InvalidRequest(DurableError, ValueError):
    """A call got an argument it cannot act on: a negative duration, a naive datetime, a bad signal name."""


class InvalidSchedule(DurableError, ValueError):
    """A schedule that cannot fire as given: a bad cron expression, time zone, interval or option."""


class SerializationError(DurableError, TypeError):
    """A value cannot be stored as JSON without loss."""


class PayloadTooLarge(SerializationError):
    """A value is larger than ``DURABLE_MAX_PAYLOAD_BYTES`` as JSON."""


class NonDeterminismError(DurableError):
    """The workflow yielded something other than what its history recorded."""


class StepTimeout(DurableError, TimeoutError):
    """A step attempt ran longer than its timeout."""


class RemoteTraceback(Exception):
    """Where a step or child workflow raised, as text: the cause a :class:`RemoteFailure` prints."""

    def __init__(self, traceback: str) -> None:
        super().__init__(traceback)
        self.traceback = traceback

    def __str__(self) -> str:
        return f'\n"""\n{self.traceback.rstrip()}\n"""'


class WaitTimeout(DurableError, TimeoutError):
    """``run.wait()`` or ``await run.await_result()`` gave up: the run had not finished in time (it goes on)."""


class UpdateRejected(DurableError):
    """The workflow rejected the update (``durable.reject()``), or its validator did; ``reason`` says why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"update {name!r} was rejected: {reason}")
        self.name = name
        self.reason = reason


class UpdateTimeout(DurableError, TimeoutError):
    """``run.update()`` gave up waiting for the reply; the update stays sent (retry with its ``update_id``)."""


class RemoteFailure(DurableError):
    """Base of errors that crossed JSON: the original class path, message and traceback are attributes.

    The original traceback is also the exception's ``__cause__``, as ``multiprocessing``
    does, so a run that fails on it keeps where the step raised, before its own frames.
    """

    what = "request"

    def __init__(self, name: str, error_type: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{self.what} {name!r} failed: {error_type}: {message}")
        self.name = name
        self.error_type = error_type
        self.message = message
        self.traceback = traceback
        if traceback:
            self.__cause__ = RemoteTraceback(traceback)


class StepFailed(RemoteFailure):
    """A step failed after its last attempt; raised inside the workflow at the ``yield``."""

    what = "step"

    @property
    def step(self) -> str:
        return self.name


class ChildFailed(RemoteFailure):
    """A child workflow failed or was cancelled; raised inside the parent at the ``yield``."""

    what = "child workflow"

    @property
    def workflow(self) -> str:
        return self.name


class RunFailed(RemoteFailure):
    """The run failed; ``run.wait()`` and ``await run.await_result()`` raise it with the run's error."""

    what = "run"

    @property
    def workflow_id(self) -> str:
        return self.name


class Cancelled(BaseException):
    """The run was cancelled; raised inside the workflow at its current ``yield``.

    Derives from ``BaseException`` so a broad ``except Exception`` in a workflow does not
    swallow it by accident.
    """


class DeadlineExceeded(Cancelled):
    """The run's deadline (``timeout=``) passed; raised inside the workflow at its current ``yield``.

    A :class:`Cancelled`, so compensation written for a cancel runs for it too; tell them
    apart with ``except DeadlineExceeded`` first, or ``isinstance(error, DeadlineExceeded)``.
    """
