"""What a workflow may yield: requests as plain data.

The generator never does I/O; it yields one of these and the engine decides what happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Request", "StepCall"]


@dataclass(frozen=True, slots=True)
class StepCall:
    """A request to run the step registered as ``step`` with JSON-encoded arguments.

    ``args_json`` is the canonical encoding; replay compares it with the recorded one.
    """

    step: str
    args_json: str

    kind = "step"

    def describe(self) -> str:
        return f"{self.kind} {self.step}({self.args_json})"


Request = StepCall


def is_request(value: Any) -> bool:
    return isinstance(value, StepCall)
