"""Durable execution for Django: workflows are generators, steps commit with your data.

The public API is the set below; everything else is private.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .context import StepContext, step_context
from .definitions import StepDefinition, WorkflowDefinition, step, workflow
from .exceptions import (
    Cancelled,
    DurableError,
    NonDeterminismError,
    SerializationError,
    StepFailed,
    StepTimeout,
    WorkflowDefinitionError,
    WorkflowIdConflict,
    WorkflowNotRegistered,
)
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .models import WorkflowRun

__all__ = [
    "Cancelled",
    "DurableError",
    "NonDeterminismError",
    "RetryPolicy",
    "SerializationError",
    "StepContext",
    "StepDefinition",
    "StepFailed",
    "StepTimeout",
    "WorkflowDefinition",
    "WorkflowDefinitionError",
    "WorkflowIdConflict",
    "WorkflowNotRegistered",
    "WorkflowRun",
    "step",
    "step_context",
    "workflow",
]


def __getattr__(name: str) -> Any:
    # Models need the app registry, so they load on first use, not at import.
    if name == "WorkflowRun":
        from .models import WorkflowRun

        return WorkflowRun
    raise AttributeError(f"module 'durable_django' has no attribute {name!r}")
