"""Every bad input gets an error that names the problem and the fix, and leaves no row."""

from __future__ import annotations

import datetime
import decimal
import uuid
from datetime import timedelta

import pytest

import durable_django as durable
from durable_django.models import WorkflowRun, WorkItem
from tests.testapp.workflows import echo_workflow

BAD_VALUES = {
    "datetime": (datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC), "args[0] is a datetime.datetime", "isoformat()"),
    "set": ({1, 2}, "args[0] is a builtins.set", "sorted list"),
    "NaN": (float("nan"), "args[0] is nan", "NaN and Infinity are not valid JSON"),
    "Infinity": (float("inf"), "args[0] is inf", "finite number"),
    "int dict key": ({1: "a"}, "args[0] has the key 1 (int)", "Use str keys"),
    "NUL character": ("a\x00b", "args[0] contains a NUL character", "PostgreSQL cannot store"),
    "lone surrogate": ("\ud800", "lone surrogate", "encoding"),
    "bytes": (b"raw", "args[0] is a builtins.bytes", "base64"),
    "Decimal": (decimal.Decimal("1.10"), "decimal.Decimal", "str(value)"),
    "UUID": (uuid.uuid4(), "uuid.UUID", "str(value)"),
    "nested": (
        {"order": {"when": datetime.date(2026, 1, 1)}},
        "args[0]['order']['when'] is a datetime.date",
        "isoformat",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("value,where,fix", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_a_bad_start_argument_is_refused_naming_the_path_and_the_fix(value, where, fix):
    with pytest.raises(durable.SerializationError) as caught:
        echo_workflow.start(value)
    message = str(caught.value)
    assert "workflow 'tests.echo'" in message
    assert where in message
    assert fix in message
    assert isinstance(caught.value, TypeError)
    assert not WorkflowRun.objects.exists()
    assert not WorkItem.objects.exists()


@pytest.mark.django_db
def test_a_bad_keyword_argument_is_named_by_keyword():
    with pytest.raises(durable.SerializationError, match=r"kwargs\['when'\] is a datetime.datetime"):
        echo_workflow.start(1, when=datetime.datetime.now(tz=datetime.UTC))
    assert not WorkflowRun.objects.exists()


BAD_IDS = {
    "empty": ("", "1 to 255 characters"),
    "too long": ("x" * 256, "1 to 255 characters"),
    "padded": (" order-1", "leading or trailing spaces"),
    "control character": ("order\n1", "control characters"),
    "not a string": (42, "must be a str"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("workflow_id,message", BAD_IDS.values(), ids=BAD_IDS.keys())
def test_a_bad_workflow_id_is_refused(workflow_id, message):
    with pytest.raises(durable.DurableError, match=message):
        echo_workflow.start(1, workflow_id=workflow_id)
    assert not WorkflowRun.objects.exists()


def plain_function():
    return 1


async def async_function():
    return 1


async def async_generator():
    yield 1


def generator_function():
    yield 1


BAD_WORKFLOWS = {
    "plain function": (plain_function, "is not a generator function"),
    "async function": (async_function, "is an async function"),
    "async generator": (async_generator, "is an async generator function"),
    "generator object": (generator_function(), "decorate the function itself"),
    "not callable": (42, "is a int, not a function"),
}


@pytest.mark.parametrize("target,message", BAD_WORKFLOWS.values(), ids=BAD_WORKFLOWS.keys())
def test_decorating_something_that_is_not_a_generator_function_is_refused(target, message):
    with pytest.raises(durable.WorkflowDefinitionError, match=message):
        durable.workflow(target)


BAD_STEPS = {
    "generator": (generator_function, "is a generator function"),
    "async": (async_function, "is an async function"),
}


@pytest.mark.parametrize("target,message", BAD_STEPS.values(), ids=BAD_STEPS.keys())
def test_decorating_a_generator_or_async_function_as_a_step_is_refused(target, message):
    with pytest.raises(durable.WorkflowDefinitionError, match=message):
        durable.step(target)


BAD_OPTIONS = {
    "zero attempts": (lambda: durable.RetryPolicy(max_attempts=0), "max_attempts=0"),
    "negative interval": (lambda: durable.RetryPolicy(initial_interval=timedelta(seconds=-1)), "initial_interval"),
    "shrinking backoff": (lambda: durable.RetryPolicy(backoff_coefficient=0.5), "backoff_coefficient=0.5"),
    "non-exception": (lambda: durable.RetryPolicy(non_retryable=("ValueError",)), "exception classes only"),
    "retry not a policy": (lambda: durable.step(retry=3), "pass a durable.RetryPolicy"),
    "negative timeout": (lambda: durable.step(timeout=timedelta(seconds=-1)), "positive timedelta"),
    "seconds as int": (lambda: durable.step(timeout=30), "positive timedelta"),
}


@pytest.mark.parametrize("build,message", BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_step_options_are_refused_at_decoration_time(build, message):
    with pytest.raises(durable.WorkflowDefinitionError, match=message):
        build()


def test_two_workflows_with_one_name_are_refused():
    def first():
        yield

    def second():
        yield

    durable.workflow(name="tests.duplicate")(first)
    with pytest.raises(durable.WorkflowDefinitionError, match=r"two workflows are named 'tests\.duplicate'"):
        durable.workflow(name="tests.duplicate")(second)


def test_step_context_outside_a_step_explains_itself():
    with pytest.raises(durable.DurableError, match="outside a running step"):
        durable.step_context()


BAD_REQUESTS = {
    "negative sleep": (lambda: durable.sleep(timedelta(seconds=-1)), "use a duration of zero or more"),
    "sleep in seconds": (lambda: durable.sleep(30), "takes a datetime.timedelta, not 30"),
    "naive sleep_until": (lambda: durable.sleep_until(datetime.datetime(2030, 1, 1)), "naive datetime"),
    "sleep_until a date": (lambda: durable.sleep_until(datetime.date(2030, 1, 1)), "takes a datetime"),
    "negative signal timeout": (
        lambda: durable.wait_signal("go", timeout=timedelta(days=-1)),
        "use a duration of zero or more",
    ),
    "unnamed signal": (lambda: durable.wait_signal(""), "needs a signal name"),
    "empty all_of": (lambda: durable.all_of(), "needs at least one request"),
    "nested group": (lambda: durable.any_of(durable.all_of(durable.sleep(timedelta(0)))), "groups do not nest"),
    "non-request in a group": (lambda: durable.all_of("step"), "argument 0 is 'step'"),
    "unnamed patch": (lambda: durable.patched(""), "needs a change id"),
    "non-JSON state": (lambda: durable.set_state({1, 2}), "durable.set_state() value is a builtins.set"),
    "non-JSON continue_as_new": (
        lambda: durable.continue_as_new(decimal.Decimal(1)),
        "durable.continue_as_new(): args[0] is a decimal.Decimal",
    ),
}


@pytest.mark.parametrize("build,message", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_a_bad_request_is_refused_where_it_is_built(build, message):
    with pytest.raises(durable.DurableError) as caught:
        build()
    assert message in str(caught.value)
    assert isinstance(caught.value, ValueError | TypeError)


def test_set_state_inside_a_group_is_refused_where_it_is_built():
    with pytest.raises(durable.InvalidRequest):
        durable.all_of(durable.set_state("x"), durable.sleep(timedelta(seconds=1)))


@pytest.mark.django_db
def test_a_bad_signal_payload_is_refused_naming_the_path_and_nothing_is_written():
    from durable_django.models import Signal

    run = echo_workflow.start(1)
    with pytest.raises(durable.SerializationError, match=r"the payload of signal 'go'\['at'\] is a datetime.datetime"):
        run.signal("go", {"at": datetime.datetime.now(tz=datetime.UTC)})
    assert not Signal.objects.exists()


@pytest.mark.django_db
def test_a_signal_to_an_unknown_workflow_id_names_it():
    with pytest.raises(durable.RunNotFound, match="no run has workflow_id 'order-404'"):
        durable.signal("order-404", "shipped")
