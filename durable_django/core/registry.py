"""Name to definition maps, filled by the decorators when ``workflows`` modules import.

The store looks definitions up here by the names history records. It needs only what the
protocols below describe, so this module knows nothing of the decorators that fill it.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Protocol

from ..exceptions import WorkflowDefinitionError, WorkflowNotRegistered
from .interpreter import Interpreter
from .policy import RetryPolicy
from .requests import decode_arguments

__all__ = [
    "ENQUEUE_PREFIX",
    "OneStepWorkflow",
    "StepCode",
    "WorkflowCode",
    "enqueued_workflow",
    "register_resolver",
    "register_step",
    "register_workflow",
    "resolve_workflow",
    "step",
    "workflow",
    "workflow_names",
]


#: Runs started by ``step.enqueue()`` use a one-step workflow named with this prefix.
ENQUEUE_PREFIX = "durable_django.enqueue:"


class WorkflowCode(Protocol):
    """What the engine needs of a workflow: its registered name and its generator function."""

    @property
    def name(self) -> str: ...
    @property
    def func(self) -> Callable[..., Generator[Any, Any, Any]]: ...


class StepCode(Protocol):
    """What the store and the worker need of a step."""

    @property
    def name(self) -> str: ...
    @property
    def func(self) -> Callable[..., Any]: ...
    @property
    def retry(self) -> RetryPolicy: ...
    @property
    def atomic(self) -> bool: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def timeout_seconds(self) -> float: ...
    @property
    def lease_seconds(self) -> float: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...


_workflows: dict[str, WorkflowCode] = {}
_steps: dict[str, StepCode] = {}
#: Name prefix -> what makes the workflow and the step of a name no decorator registered: code
#: found by its name at run time (django.tasks' tasks, by module path). It raises
#: WorkflowNotRegistered for a name it cannot resolve.
_resolvers: dict[str, Callable[[str], tuple[WorkflowCode, StepCode]]] = {}


def register_resolver(prefix: str, resolve: Callable[[str], tuple[WorkflowCode, StepCode]]) -> None:
    """Resolve names starting with ``prefix`` with ``resolve`` (the workflow and the step they name)."""
    _resolvers[prefix] = resolve


def _resolved(name: str) -> tuple[WorkflowCode, StepCode] | None:
    for prefix, resolve in _resolvers.items():
        if name.startswith(prefix):
            return resolve(name)
    return None


def _register(table: dict[str, Any], kind: str, definition: StepCode | WorkflowCode) -> None:
    existing = table.get(definition.name)
    if existing is not None and _qualname(existing.func) != _qualname(definition.func):
        raise WorkflowDefinitionError(
            f"two {kind}s are named {definition.name!r}: {_qualname(existing.func)} and "
            f"{_qualname(definition.func)}; give one of them name=..."
        )
    table[definition.name] = definition


def _qualname(func: object) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"


def register_workflow(definition: WorkflowCode) -> None:
    _register(_workflows, "workflow", definition)


def register_step(definition: StepCode) -> None:
    _register(_steps, "step", definition)


def _lookup(table: dict[str, Any], kind: str, name: str) -> Any:
    try:
        return table[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise WorkflowNotRegistered(
            f"no {kind} named {name!r} is registered in this process.{hint} Define it in a "
            f"'workflows.py' module of an installed app (or import it there) so it is discovered."
        ) from None


def workflow(name: str) -> WorkflowCode:
    return _lookup(_workflows, "workflow", name)  # type: ignore[no-any-return]


def workflow_names() -> list[str]:
    """The registered workflows' names, sorted (``step.enqueue()``'s one-step workflows are not registered)."""
    return sorted(_workflows)


def step(name: str) -> StepCode:
    resolved = _resolved(name) if name not in _steps else None
    if resolved is not None:
        return resolved[1]
    return _lookup(_steps, "step", name)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class OneStepWorkflow:
    """The workflow that runs one step on its own, for ``step.enqueue()``."""

    step: StepCode

    @property
    def name(self) -> str:
        return ENQUEUE_PREFIX + self.step.name

    @property
    def func(self) -> Callable[..., Generator[Any, Any, Any]]:
        step = self.step

        def run_step(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
            return (yield step(*args, **kwargs))

        return run_step


def enqueued_workflow(step_code: StepCode) -> OneStepWorkflow:
    """The one-step workflow that runs ``step_code`` for ``.enqueue()``."""
    return OneStepWorkflow(step_code)


def resolve_workflow(name: str) -> WorkflowCode:
    """Find the workflow a stored run names, including one-step ``enqueue`` runs."""
    if name.startswith(ENQUEUE_PREFIX):
        return enqueued_workflow(step(name.removeprefix(ENQUEUE_PREFIX)))
    resolved = _resolved(name) if name not in _workflows else None
    if resolved is not None:
        return resolved[0]
    return workflow(name)


def workflow_interpreter(name: str, input_json: str) -> Interpreter:
    """A new generator of the workflow registered as ``name``, on its stored arguments; raises WorkflowNotRegistered."""
    definition = resolve_workflow(name)
    args, kwargs = decode_arguments(input_json)
    return Interpreter(name, definition.func, args, kwargs)
