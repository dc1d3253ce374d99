"""``durable.schedule()`` refuses bad input where it is called, naming the fix."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from datetime import timedelta

import pytest

import durable_django as durable
from durable_django.core import schedules as declarations
from tests.testapp.workflows import collect, double, echo_workflow


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    yield
    for definition in declarations.declared():
        if definition.name.startswith("decl-"):
            declarations.forget(definition.name)


def plain() -> None:
    return None


BAD = {
    "invalid cron": (
        lambda: durable.schedule("decl-1", echo_workflow, cron="0 25 * * *", args=[1]),
        durable.InvalidSchedule,
        "schedule 'decl-1': cron='0 25 * * *' is not a valid cron expression (Bad hour); use 5 fields",
    ),
    "unknown timezone": (
        lambda: durable.schedule("decl-2", echo_workflow, cron="0 2 * * *", timezone="Paris", args=[1]),
        durable.InvalidSchedule,
        "timezone='Paris' is not a known time zone",
    ),
    "neither cron nor every": (
        lambda: durable.schedule("decl-3", echo_workflow, args=[1]),
        durable.InvalidSchedule,
        "it got neither",
    ),
    "both cron and every": (
        lambda: durable.schedule("decl-4", echo_workflow, cron="@daily", every=timedelta(days=1), args=[1]),
        durable.InvalidSchedule,
        "it got both",
    ),
    "unregistered workflow name": (
        lambda: durable.schedule("decl-5", "tests.ecko", every=timedelta(hours=1)),
        durable.WorkflowNotRegistered,
        "no workflow named 'tests.ecko' is registered in this process. Did you mean 'tests.echo'?",
    ),
    "plain function": (
        lambda: durable.schedule("decl-6", plain, every=timedelta(hours=1)),
        durable.InvalidSchedule,
        "decorate the function with @durable.workflow",
    ),
    "a step": (
        lambda: durable.schedule("decl-7", double, every=timedelta(hours=1), args=[1]),
        durable.InvalidSchedule,
        "not a step; schedule a workflow that yields it",
    ),
    "arguments the workflow does not take": (
        lambda: durable.schedule("decl-8", collect, every=timedelta(hours=1), kwargs={"counts": 1}),
        durable.InvalidSchedule,
        "workflow 'tests.collect' cannot be called with args=[], kwargs={'counts': 1}",
    ),
    "arguments JSON cannot hold": (
        lambda: durable.schedule("decl-9", echo_workflow, every=timedelta(hours=1), args=[datetime.date(2030, 1, 1)]),
        durable.SerializationError,
        "schedule 'decl-9': args[0] is a datetime.date",
    ),
    "unknown overlap": (
        lambda: durable.schedule("decl-10", echo_workflow, every=timedelta(hours=1), args=[1], overlap="queue"),
        durable.InvalidSchedule,
        "overlap='queue'; use one of 'skip', 'allow', 'cancel_previous'",
    ),
    "no catch-up": (
        lambda: durable.schedule("decl-11", echo_workflow, every=timedelta(hours=1), args=[1], catch_up=0),
        durable.InvalidSchedule,
        "catch_up=0; use an int of at least 1",
    ),
    "negative jitter": (
        lambda: durable.schedule(
            "decl-12", echo_workflow, every=timedelta(hours=1), args=[1], jitter=timedelta(seconds=-1)
        ),
        durable.InvalidSchedule,
        "use a timedelta of zero or more",
    ),
    "blank name": (
        lambda: durable.schedule(" ", echo_workflow, every=timedelta(hours=1), args=[1]),
        durable.InvalidSchedule,
        "use 1 to 200 characters",
    ),
}


@pytest.mark.parametrize("call,error,message", BAD.values(), ids=BAD.keys())
def test_a_bad_schedule_is_refused_where_it_is_declared(call, error, message):
    with pytest.raises(error) as caught:
        call()
    assert message in str(caught.value)
    assert not [definition for definition in declarations.declared() if definition.name.startswith("decl-")]


def test_a_schedule_declaration_is_a_frozen_value_kept_for_the_workers():
    declared = durable.schedule(
        "decl-ok", echo_workflow, cron="30 2 * * *", timezone="Europe/Paris", args=[5], kwargs={"note": "x"}
    )
    assert isinstance(declared, durable.ScheduleDefinition)
    assert (declared.workflow, declared.args_json) == ("tests.echo", '{"args":[5],"kwargs":{"note":"x"}}')
    assert (declared.overlap, declared.catch_up, declared.jitter) == ("skip", 1, timedelta(0))
    assert declared in declarations.declared()
    with pytest.raises(AttributeError):
        declared.name = "other"  # type: ignore[misc]


def test_the_same_declaration_twice_is_fine_and_a_different_one_with_the_name_is_refused():
    durable.schedule("decl-twice", echo_workflow, every=timedelta(hours=1), args=[1])
    durable.schedule("decl-twice", echo_workflow, every=timedelta(hours=1), args=[1])  # a module imported again
    with pytest.raises(durable.InvalidSchedule, match="two schedules are named 'decl-twice'"):
        durable.schedule("decl-twice", echo_workflow, every=timedelta(hours=2), args=[1])
