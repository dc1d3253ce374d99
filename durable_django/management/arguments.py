"""Argument types shared by the commands: each turns a string into a value or says what is wrong."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from ..models import WorkflowRun

__all__ = ["at_least", "json_value", "positive_float", "status"]


def at_least(minimum: int) -> Callable[[str], int]:
    """An ``int`` argument no smaller than ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is less than {minimum}")
        return value

    parse.__name__ = "number"  # argparse names the type in its own messages
    return parse


def positive_float(text: str) -> float:
    """A number of seconds greater than zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number above 0")
    return value


def json_value(text: str) -> Any:
    """A JSON document, such as ``'{"carrier": "UPS"}'``, ``'"text"'`` or ``42``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not JSON ({error.msg} at character {error.pos}); quote text as '\"text\"'"
        ) from None


def status(text: str) -> str:
    """One of ``WorkflowRun.Status``."""
    if text not in WorkflowRun.Status.values:
        raise argparse.ArgumentTypeError(f"{text!r} is not a status; use one of {', '.join(WorkflowRun.Status.values)}")
    return text
