"""The bad-input catalog (shared/reference/reliability.md, B01 to B32), one row each, on the public API.

Each row that applies runs the bad input and checks the error's type, that its message names
the problem and the fix, and that nothing was lost or left half-written. A row that does not
apply says why. A test checks that no row is left behind.
"""

from __future__ import annotations

import datetime
import decimal
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import override_settings

import durable_django as durable
from durable_django.core import registry
from durable_django.models import HistoryEntry, Signal, WorkflowRun, WorkItem
from durable_django.testing import run_until_idle, run_workflow
from tests.testapp import compositions
from tests.testapp.workflows import echo_workflow, wait_or_timeout

Status = WorkflowRun.Status


@dataclass(frozen=True)
class Row:
    what: str
    check: Callable[..., None] | None = None
    #: Why the row does not apply to durable_django, when it does not.
    not_applicable: str = ""
    #: Commits for real: the check is about what a transaction of the caller's does.
    transactional: bool = False


def raises(error: type[BaseException], call: Callable[[], Any], *fragments: str) -> str:
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} is not in {message!r}"
    return message


def nothing_started() -> None:
    assert not WorkflowRun.objects.exists() and not WorkItem.objects.exists()


def b02_unknown_workflow_at_run_time() -> None:
    run = WorkflowRun.objects.create(workflow_id="renamed-1", workflow_name="shop.place_order_v0", input_json="{}")
    with transaction.atomic():
        from durable_django.store import outbox

        outbox.wake("default", run.pk)
    run_until_idle()
    run.refresh_from_db()
    assert run.status == Status.BLOCKED
    assert "no workflow named 'shop.place_order_v0'" in run.error["message"]
    assert "'workflows.py' module of an installed app" in run.error["message"]


def b03_plain_function() -> None:
    raises(durable.WorkflowDefinitionError, lambda: durable.workflow(lambda: 1), "is not a generator function", "yield")


def b04_async_and_generator_objects() -> None:
    async def coroutine() -> None: ...

    def generator() -> Any:
        yield 1

    raises(durable.WorkflowDefinitionError, lambda: durable.workflow(coroutine), "async function", "plain generator")
    raises(durable.WorkflowDefinitionError, lambda: durable.workflow(generator()), "decorate the function itself")
    raises(durable.WorkflowDefinitionError, lambda: durable.workflow(int), "is not a generator function")


def b05_duplicate_name() -> None:
    def first() -> Any:
        yield

    def second() -> Any:
        yield

    durable.workflow(name="catalog.twice")(first)
    raises(durable.WorkflowDefinitionError, lambda: durable.workflow(name="catalog.twice")(second), "name=")


def b06_invalid_yield() -> None:
    run = run_workflow(compositions.yields_a_dict)
    assert run.status == Status.FAILED and run.error["type"] == "durable_django.exceptions.InvalidYield"
    assert "yielded builtins.dict" in run.error["message"] and "yield a step call" in run.error["message"]


def _refused_everywhere(value: Any, fix: str, result_kind: str | None = None) -> None:
    """``value`` is refused where it is given (a start, a signal) and, as a step's result, fails the step once."""
    raises(durable.SerializationError, lambda: echo_workflow.start(value), "args[0]", "workflow 'tests.echo'", fix)
    assert not WorkflowRun.objects.filter(workflow_name="tests.echo").exists()
    waiting = run_workflow(wait_or_timeout, 1)
    raises(durable.SerializationError, lambda: waiting.signal("go", {"note": value}), "['note']", fix)
    assert not Signal.objects.filter(run=waiting).exists()
    if result_kind is not None:
        failed = run_workflow(compositions.returns_not_json_result, result_kind)
        assert failed.result["type"] == "durable_django.exceptions.SerializationError", failed.result
        assert fix in failed.result["message"]
        assert HistoryEntry.objects.get(run=failed, seq=0).attempts == 1, "a result JSON cannot hold was retried"


def b07_values_json_cannot_store() -> None:
    class Custom:
        pass

    for value, fix in (
        (datetime.datetime.now(tz=datetime.UTC), "isoformat()"),
        ({1, 2}, "sorted list"),
        (b"x", "base64"),
        (decimal.Decimal("1.5"), "str(value)"),
        (Custom(), "only None, bool, int, float, str, list and dict"),
    ):
        raises(durable.SerializationError, lambda value=value: echo_workflow.start(value), "args[0]", fix)
    nothing_started()
    _refused_everywhere({1, 2}, "sorted list", "set")


def b08_nan_and_infinity() -> None:
    for value in (float("nan"), float("inf"), float("-inf")):
        raises(durable.SerializationError, lambda value=value: echo_workflow.start(value), "finite number")
    _refused_everywhere(float("nan"), "finite number", "nan")


def b09_nul_and_lone_surrogates() -> None:
    raises(durable.SerializationError, lambda: echo_workflow.start("a\ud800b"), "lone surrogate", "encoding")
    _refused_everywhere("a\x00b", "NUL", "nul")


def b10_non_string_keys() -> None:
    _refused_everywhere({1: "a"}, "Use str keys", "int-key")


def b11_payload_over_the_limit() -> None:
    with override_settings(DURABLE_MAX_PAYLOAD_BYTES=10_000):
        raises(durable.PayloadTooLarge, lambda: echo_workflow.start("x" * 20_000), "DURABLE_MAX_PAYLOAD_BYTES", "key")
        nothing_started()
        waiting = run_workflow(wait_or_timeout, 1)
        raises(durable.PayloadTooLarge, lambda: waiting.signal("go", "x" * 20_000), "the payload of signal 'go'")
        assert not Signal.objects.filter(run=waiting).exists()
        state = run_workflow(compositions.big_state, 20_000)
        assert state.status == Status.FAILED and state.error["type"] == "durable_django.exceptions.PayloadTooLarge"
        result = run_workflow(compositions.returns_big_result, 20_000)
        assert result.result["type"] == "durable_django.exceptions.PayloadTooLarge"
        assert HistoryEntry.objects.get(run=result, seq=0).attempts == 1, "a result too large was retried"


def b12_same_id_same_input() -> None:
    first = echo_workflow.start(1, workflow_id="catalog-same")
    assert echo_workflow.start(1, workflow_id="catalog-same").pk == first.pk


def b13_same_id_other_input() -> None:
    echo_workflow.start(1, workflow_id="catalog-other")
    raises(durable.WorkflowIdConflict, lambda: echo_workflow.start(2, workflow_id="catalog-other"), "use another")


def b14_invalid_workflow_id() -> None:
    for bad in ("", "x" * 256, " padded", "a\nb"):
        raises(durable.InvalidWorkflowId, lambda bad=bad: echo_workflow.start(1, workflow_id=bad), "workflow_id=")
    nothing_started()


def b15_start_in_a_transaction_on_another_database() -> None:
    with transaction.atomic(using="other"):
        raises(durable.InvalidRequest, lambda: echo_workflow.start(1), "database 'other'", "DATABASE_ROUTERS")
    nothing_started()


def b16_start_inside_workflow_code() -> None:
    run = run_workflow(compositions.starts_inside)
    assert run.status == Status.FAILED and run.error["type"] == "durable_django.exceptions.InvalidRequest"
    assert "inside workflow code" in run.error["message"] and "as a child" in run.error["message"]
    assert WorkflowRun.objects.count() == 1


def b17_signal_to_an_unknown_run() -> None:
    raises(
        durable.RunNotFound, lambda: durable.signal("order-404", "shipped"), "order-404", "workflow_id given to start()"
    )


def b18_signal_to_a_finished_run() -> None:
    run = run_workflow(echo_workflow, 1)
    raises(durable.RunFinished, lambda: run.signal("late"), "is completed", "start a new run")


def b21_bad_timers() -> None:
    raises(durable.InvalidRequest, lambda: durable.sleep(timedelta(seconds=-5)), "zero or more")
    raises(durable.InvalidRequest, lambda: durable.sleep(timedelta.max), "1,000 years", "shorter duration")
    raises(durable.InvalidRequest, lambda: durable.sleep_until(datetime.datetime(2030, 1, 1)), "naive", "aware")


def b22_bad_retry_policy() -> None:
    raises(durable.WorkflowDefinitionError, lambda: durable.RetryPolicy(max_attempts=0), "at least 1")
    raises(durable.WorkflowDefinitionError, lambda: durable.RetryPolicy(backoff_coefficient=0.5), "at least 1")
    raises(durable.WorkflowDefinitionError, lambda: durable.RetryPolicy(non_retryable=("KeyError",)), "classes only")


def b23_step_unknown_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(registry._steps, "tests.double")
    with override_settings(DURABLE_UNKNOWN_CODE_GRACE=0):
        run = run_workflow(echo_workflow, 1)
    assert run.status == Status.BLOCKED
    assert "no step named 'tests.double'" in run.error["message"]
    assert "resume" in run.error["message"], run.error["message"]  # the fix: deploy the code, then resume


def b24_replay_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    run = run_workflow(wait_or_timeout, 1)

    def changed(hours: float) -> Any:
        return (yield durable.wait_signal("other", timeout=timedelta(hours=hours)))

    monkeypatch.setitem(registry._workflows, "tests.wait_or_timeout", durable.WorkflowDefinition(changed, "x"))
    from durable_django.store import generator_cache

    generator_cache.clear()
    run.signal("go")
    run_until_idle()
    run.refresh_from_db()
    assert run.status == Status.BLOCKED and run.error["type"] == "durable_django.exceptions.NonDeterminismError"
    assert "signal go" in run.error["message"] and "signal other" in run.error["message"]
    assert "durable.patched()" in run.error["message"]


def b25_finally_that_yields_while_discarded() -> None:
    run = run_workflow(compositions.yields_in_finally, "discarded")
    from durable_django.store import generator_cache

    generator_cache.clear()  # closing the live generator runs its finally: nothing it yields is carried out
    assert not HistoryEntry.objects.filter(run=run, name="tests.bump").exists()
    run.signal("go")
    run_until_idle()
    run.refresh_from_db()
    assert run.status == Status.COMPLETED and HistoryEntry.objects.filter(run=run, name="tests.bump").count() == 1


def b26_a_workflow_that_catches_cancelled() -> None:
    run = run_workflow(compositions.swallows_cancel)
    run.cancel()
    run_until_idle()
    run.refresh_from_db()
    assert (run.status, run.result) == (Status.COMPLETED, "carried on")  # documented: returning completes it


def b29_non_json_return_value() -> None:
    run = run_workflow(compositions.returns_a_set)
    assert run.status == Status.FAILED and run.error["type"] == "durable_django.exceptions.SerializationError"
    assert "the return value of workflow 'tests.returns_a_set'" in run.error["message"]


def b30_operator_action_in_the_wrong_state() -> None:
    run = run_workflow(wait_or_timeout, 1)
    raises(durable.InvalidRunState, lambda: durable.retry(run), "is waiting", "only failed or blocked")
    raises(durable.InvalidRunState, lambda: durable.resume(run), "only blocked runs")
    run.refresh_from_db()
    assert run.status == Status.WAITING


def b31_unsafe_configuration() -> None:
    from durable_django.checks import check_celery_serializer

    with override_settings(CELERY_ACCEPT_CONTENT=["json", "pickle"]):
        (error,) = check_celery_serializer()
    assert error.id == "durable_django.E002" and "CELERY_ACCEPT_CONTENT" in (error.hint or "")


CATALOG: dict[str, Row] = {
    "B01": Row("unknown workflow name at start", not_applicable="runs start from the definition, never by name"),
    "B02": Row("workflow unknown when the run advances", b02_unknown_workflow_at_run_time),
    "B03": Row("a plain function as a workflow", b03_plain_function),
    "B04": Row("async functions, generator objects", b04_async_and_generator_objects),
    "B05": Row("two workflows with one name", b05_duplicate_name),
    "B06": Row("yielding something that is not a request", b06_invalid_yield),
    "B07": Row("non-JSON arguments", b07_values_json_cannot_store),
    "B08": Row("NaN and Infinity", b08_nan_and_infinity),
    "B09": Row("NUL and lone surrogates", b09_nul_and_lone_surrogates),
    "B10": Row("non-string keys", b10_non_string_keys),
    "B11": Row("a payload over the limit", b11_payload_over_the_limit),
    "B12": Row("the same workflow_id and input", b12_same_id_same_input),
    "B13": Row("the same workflow_id, other input", b13_same_id_other_input),
    "B14": Row("an invalid workflow_id", b14_invalid_workflow_id),
    "B15": Row(
        "start() in a transaction on another database",
        b15_start_in_a_transaction_on_another_database,
        transactional=True,
    ),
    "B16": Row("start() inside workflow code", b16_start_inside_workflow_code),
    "B17": Row("a signal to an unknown run", b17_signal_to_an_unknown_run),
    "B18": Row("a signal to a finished run", b18_signal_to_a_finished_run),
    "B19": Row(
        "a signal name the workflow does not declare",
        not_applicable="signals are not declared: a signal no wait takes stays in the inbox, shown in the admin",
    ),
    "B20": Row(
        "a duplicate signal id",
        not_applicable="signals have no id: send one in the transaction that makes the change it announces",
    ),
    "B21": Row("bad timers", b21_bad_timers),
    "B22": Row("a bad retry policy", b22_bad_retry_policy),
    "B23": Row("a step unknown when it is due", b23_step_unknown_at_run_time),
    "B24": Row("replay that diverges from history", b24_replay_mismatch),
    "B25": Row("a finally that yields while the generator is discarded", b25_finally_that_yields_while_discarded),
    "B26": Row("a workflow that catches Cancelled", b26_a_workflow_that_catches_cancelled),
    "B27": Row(
        "workflow code that never yields",
        not_applicable="not detected: it holds its worker process; Celery's task time limit is the guard",
    ),
    "B28": Row(
        "clock, random or ORM reads in workflow code",
        not_applicable="not detected: docs/concepts.md asks for them in steps",
    ),
    "B29": Row("a non-JSON return value", b29_non_json_return_value),
    "B30": Row("an operator action in the wrong state", b30_operator_action_in_the_wrong_state),
    "B31": Row("unsafe configuration", b31_unsafe_configuration),
    "B32": Row(
        "a provider's 'same key, other parameters'",
        not_applicable="the provider's error fails the step like any other; the example's is non_retryable",
    ),
}


def test_no_row_of_the_catalog_is_left_behind():
    assert set(CATALOG) == {f"B{number:02}" for number in range(1, 33)}
    for number, row in CATALOG.items():
        assert (row.check is None) != (not row.not_applicable), f"{number}: a check or a reason, not both"


def run_check(number: str, monkeypatch: pytest.MonkeyPatch) -> None:
    check = CATALOG[number].check
    assert check is not None
    if "monkeypatch" in check.__code__.co_varnames[: check.__code__.co_argcount]:
        check(monkeypatch)
    else:
        check()


@pytest.mark.django_db
@pytest.mark.parametrize("number", [n for n, row in CATALOG.items() if row.check and not row.transactional], ids=str)
def test_each_bad_input_gets_its_error(number, monkeypatch):
    run_check(number, monkeypatch)


@pytest.mark.django_db(transaction=True, databases=["default", "other"])
@pytest.mark.parametrize("number", [n for n, row in CATALOG.items() if row.transactional], ids=str)
def test_each_bad_input_about_the_callers_transaction_gets_its_error(number, monkeypatch):
    run_check(number, monkeypatch)
