from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from durable_django.store import outbox


@dataclass
class Output:
    out: str
    err: str
    #: The exit status manage.py would end with.
    status: int


@pytest.fixture(autouse=True)
def no_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outbox, "send_message", lambda item_id, options: None)


@pytest.fixture
def command() -> Callable[..., Output]:
    """Run a management command as manage.py would; return its output and exit status."""

    def run(*args: str) -> Output:
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command(*args, stdout=out, stderr=err)
        except CommandError as error:
            return Output(out.getvalue(), err.getvalue() + str(error), error.returncode)
        return Output(out.getvalue(), err.getvalue(), 0)

    return run
