"""Errors are named subclasses that also are the matching Python and Django types."""

from __future__ import annotations

import ast
import traceback
from pathlib import Path

import pytest
from django.core.exceptions import ObjectDoesNotExist

import durable_django as durable
from durable_django import exceptions

PACKAGE = Path(durable.__file__).parent


def test_durable_error_itself_is_never_raised_a_named_subclass_is():
    bare = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            call = node.exc if isinstance(node, ast.Raise) else None
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "DurableError":
                bare.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert not bare, "raise a named subclass of DurableError instead:\n" + "\n".join(bare)


@pytest.mark.parametrize(
    ("error", "also"),
    [
        (durable.RunNotFound, ObjectDoesNotExist),
        (durable.RunNotFound, LookupError),
        (durable.RunFinished, durable.InvalidRunState),
        (durable.InvalidRunState, ValueError),
        (durable.StepContextUnavailable, RuntimeError),
        (durable.InvalidRequest, ValueError),
        (durable.SerializationError, TypeError),
        (durable.WaitTimeout, TimeoutError),
        (durable.RunFailed, exceptions.RemoteFailure),
    ],
)
def test_errors_are_also_the_python_or_django_type_callers_catch(error, also):
    assert issubclass(error, durable.DurableError) and issubclass(error, also)


def test_every_public_exception_is_exported_and_documented():
    for name in exceptions.__all__:
        error = getattr(exceptions, name)
        assert error.__doc__ and error.__doc__.strip(), f"{name} needs a one-line docstring"
        if name not in {"RemoteFailure", "RemoteTraceback"}:
            assert name in durable.__all__, f"durable.{name} is not exported"


def test_step_context_outside_a_step_says_where_it_works():
    with pytest.raises(durable.StepContextUnavailable, match=r"only inside a function decorated with @durable\.step"):
        durable.step_context()


@pytest.mark.parametrize("failure", [durable.StepFailed, durable.ChildFailed])
def test_a_remote_failure_prints_the_remote_traceback_as_its_cause(failure):
    remote = 'Traceback (most recent call last):\n  File "shop/payments.py", line 7, in charge\nValueError: declined\n'
    error = failure("shop.charge", "builtins.ValueError", "declined", remote)
    printed = "".join(traceback.format_exception(error))
    assert 'File "shop/payments.py", line 7, in charge' in printed
    assert printed.index("shop/payments.py") < printed.index("The above exception was the direct cause")
    assert error.traceback == remote


def test_a_remote_failure_without_a_traceback_has_no_cause():
    assert durable.StepFailed("shop.charge", "x.Lost", "no report").__cause__ is None
