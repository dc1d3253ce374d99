"""Name to definition maps, filled by the decorators when ``workflows`` modules import."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

from .exceptions import WorkflowDefinitionError, WorkflowNotRegistered

if TYPE_CHECKING:
    from .definitions import StepDefinition, WorkflowDefinition

__all__ = ["autodiscover", "register_step", "register_workflow", "step", "workflow"]

_workflows: dict[str, WorkflowDefinition[Any]] = {}
_steps: dict[str, StepDefinition[Any, Any]] = {}


def _register(table: dict[str, Any], kind: str, definition: StepDefinition[Any, Any] | WorkflowDefinition[Any]) -> None:
    existing = table.get(definition.name)
    if existing is not None and _qualname(existing.func) != _qualname(definition.func):
        raise WorkflowDefinitionError(
            f"two {kind}s are named {definition.name!r}: {_qualname(existing.func)} and "
            f"{_qualname(definition.func)}; give one of them name=..."
        )
    table[definition.name] = definition


def _qualname(func: object) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', '?')}"


def register_workflow(definition: WorkflowDefinition[Any]) -> None:
    _register(_workflows, "workflow", definition)


def register_step(definition: StepDefinition[Any, Any]) -> None:
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


def workflow(name: str) -> WorkflowDefinition[Any]:
    return _lookup(_workflows, "workflow", name)  # type: ignore[no-any-return]


def step(name: str) -> StepDefinition[Any, Any]:
    return _lookup(_steps, "step", name)  # type: ignore[no-any-return]


def autodiscover() -> None:
    """Import the ``workflows`` module of every installed app, as the admin does for ``admin``."""
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("workflows")
