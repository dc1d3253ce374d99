"""Every error durable_django raises derives from :class:`DurableError`.

Each class also inherits the matching stdlib type where one fits, so callers can catch
``TypeError`` or ``LookupError`` without knowing this package.
"""

from __future__ import annotations

__all__ = [
    "Cancelled",
    "ChildFailed",
    "DurableError",
    "InvalidRequest",
    "InvalidWorkflowId",
    "InvalidYield",
    "NonDeterminismError",
    "RemoteFailure",
    "RunFinished",
    "RunNotFound",
    "SerializationError",
    "StepFailed",
    "StepTimeout",
    "WorkerLost",
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


class RunNotFound(DurableError, LookupError):
    """No run matches the given id."""


class RunFinished(DurableError, ValueError):
    """The run is completed, failed or cancelled, so it cannot take a signal or a cancel."""


class InvalidWorkflowId(DurableError, ValueError):
    """A ``workflow_id`` that is not 1 to 255 printable characters."""


class InvalidYield(DurableError, TypeError):
    """The workflow yielded something that is not a request."""


class WorkerLost(DurableError):
    """The process running a step's last attempt died before it reported (its lease expired)."""


class InvalidRequest(DurableError, ValueError):
    """A request was built with a bad argument, such as a negative duration or a naive datetime."""


class SerializationError(DurableError, TypeError):
    """A value cannot be stored as JSON without loss."""


class NonDeterminismError(DurableError):
    """The workflow yielded something other than what its history recorded."""


class StepTimeout(DurableError, TimeoutError):
    """A step attempt ran longer than its timeout."""


class RemoteFailure(DurableError):
    """Base of errors that crossed JSON: the original class path, message and traceback are attributes."""

    what = "request"

    def __init__(self, name: str, error_type: str, message: str, traceback: str = "") -> None:
        super().__init__(f"{self.what} {name!r} failed: {error_type}: {message}")
        self.name = name
        self.error_type = error_type
        self.message = message
        self.traceback = traceback


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


class Cancelled(BaseException):
    """The run was cancelled; raised inside the workflow at its current ``yield``.

    Derives from ``BaseException`` so a broad ``except Exception`` in a workflow does not
    swallow it by accident.
    """
