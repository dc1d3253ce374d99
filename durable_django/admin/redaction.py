"""Hide values whose key looks secret before anything reaches the screen or a download.

Workflow inputs, step arguments and signal payloads are the user's data, and they often
carry card numbers, tokens or passwords. The admin shows them to every staff user who may
view runs, so it redacts by key name (the only thing it can know about a value), at any
depth, in everything it shows: arguments, results, errors, state, signals and locals.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from ..conf import settings
from ..core import registry
from ..core.requests import Kind
from ..exceptions import WorkflowNotRegistered

__all__ = ["REDACTED", "fragments", "is_call", "is_secret", "positional_names", "redact", "redact_call"]

#: What a redacted value is replaced with.
REDACTED = "[redacted]"

_NOT_ALNUM = re.compile(r"[^0-9a-z]")


def _normal(name: str) -> str:
    return _NOT_ALNUM.sub("", name.lower())


def fragments(configured: Any = None) -> tuple[str, ...]:
    """The normalised fragments of ``DURABLE_ADMIN_REDACT`` (or of ``configured``)."""
    value = settings.ADMIN_REDACT if configured is None else configured
    # A bare string would be split into letters and redact nearly everything.
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ImproperlyConfigured(f"DURABLE_ADMIN_REDACT must be a list or tuple of str, not {value!r}.")
    found = []
    for item in value:
        if not isinstance(item, str) or not _normal(item):
            raise ImproperlyConfigured(f"DURABLE_ADMIN_REDACT holds {item!r}; each entry must be a non-empty str.")
        found.append(_normal(item))
    return tuple(found)


def is_secret(key: str, secret_fragments: tuple[str, ...]) -> bool:
    """True when ``key``, in lower case with only letters and digits, contains a fragment."""
    name = _normal(key)
    return any(fragment in name for fragment in secret_fragments)


def redact(value: Any, secret_fragments: tuple[str, ...] | None = None) -> Any:
    """A copy of a JSON value with every value under a secret-looking key replaced by :data:`REDACTED`."""
    found = fragments() if secret_fragments is None else secret_fragments
    if isinstance(value, dict):
        return {key: REDACTED if is_secret(str(key), found) else redact(item, found) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact(item, found) for item in value]
    return value


def positional_names(kind: str, name: str) -> tuple[str, ...]:
    """The parameter names of a step's or workflow's positional arguments, in order.

    Arguments are stored as ``{"args": [...], "kwargs": {...}}``: a password passed by
    position has no key to be recognised by, but its parameter has a name. Empty when
    the code is not registered in this process.
    """
    try:
        if kind == Kind.STEP or name.startswith(registry.ENQUEUE_PREFIX):
            func: Any = registry.step(name.removeprefix(registry.ENQUEUE_PREFIX)).func
        else:
            func = registry.resolve_workflow(name).func
        parameters = inspect.signature(func).parameters.values()
    except (WorkflowNotRegistered, TypeError, ValueError):
        return ()
    names = []
    for parameter in parameters:
        if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            break  # what *args takes has no name
        names.append(parameter.name)
    return tuple(names)


def is_call(value: Any) -> bool:
    """Whether ``value`` has the shape of stored call arguments."""
    return (
        isinstance(value, dict)
        and set(value) == {"args", "kwargs"}
        and isinstance(value["args"], list)
        and isinstance(value["kwargs"], dict)
    )


def redact_call(arguments: Any, names: tuple[str, ...], secret_fragments: tuple[str, ...]) -> Any:
    """:func:`redact` for stored call arguments, also hiding positional ones whose parameter looks secret."""
    if not is_call(arguments):
        return redact(arguments, secret_fragments)
    positional = [
        REDACTED if index < len(names) and is_secret(names[index], secret_fragments) else redact(item, secret_fragments)
        for index, item in enumerate(arguments["args"])
    ]
    return {"args": positional, "kwargs": redact(arguments["kwargs"], secret_fragments)}
