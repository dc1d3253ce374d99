"""django.tasks on durable_django: any ``@task`` is a durable, transactional outbox task.

Runs on Django 6's ``django.tasks`` and on Django 5.2 with the ``django-tasks`` backport
(``make test`` and ``make test-next`` run this file on both).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import django
import pytest
from django.db import transaction
from django.utils import timezone

import durable_django as durable
from durable_django.models import HistoryEntry, WorkflowRun, WorkItem
from durable_django.task_backend import DurableBackend, task_options
from durable_django.task_backend.compat import (
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_backends,
    task_enqueued,
    task_finished,
    task_started,
)
from durable_django.testing import no_broker, pass_time, run_until_idle
from example_project.shop.models import Order
from tests.testapp.models import Counter
from tests.testapp.tasks import (
    add,
    always_fails,
    async_add,
    bump_task,
    flaky_task,
    introspect,
    refuse,
    routed_task,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def in_process():
    """Messages stay in the database; run_until_idle() works them here, as a worker would."""
    with no_broker():
        yield


@pytest.fixture
def sent():
    """Django's task signals as they are sent: (signal name, task result id, status)."""
    seen: list[tuple[str, str, str]] = []
    receivers = []
    for name, signal in (("enqueued", task_enqueued), ("started", task_started), ("finished", task_finished)):

        def receiver(sender, task_result, _name=name, **kwargs):
            assert sender is DurableBackend
            seen.append((_name, task_result.id, task_result.status))

        signal.connect(receiver)
        receivers.append((signal, receiver))
    yield seen
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def test_the_backend_is_what_tasks_settings_names():
    backend = task_backends["default"]
    assert isinstance(backend, DurableBackend)
    assert (backend.supports_defer, backend.supports_get_result, backend.supports_async_task) == (True, True, True)
    assert backend.supports_priority is False


@pytest.mark.usefixtures("in_process")
def test_enqueue_in_a_rolled_back_transaction_leaves_nothing(sent):
    with pytest.raises(RuntimeError), transaction.atomic():
        Order.objects.create(amount_cents=100)
        result = add.enqueue(1, 2)
        raise RuntimeError("the view failed")
    assert not WorkflowRun.objects.exists() and not WorkItem.objects.exists() and not Order.objects.exists()
    assert run_until_idle() == 0
    with pytest.raises(TaskResultDoesNotExist):
        add.get_result(result.id)
    assert sent == [], "task_enqueued is sent only once the enqueue commits"


@pytest.mark.usefixtures("in_process")
def test_enqueue_commits_with_the_caller_and_the_task_runs_after(sent):
    with transaction.atomic():
        order = Order.objects.create(amount_cents=100)
        result = add.enqueue(order.amount_cents, 2)
        assert result.status == TaskResultStatus.READY and sent == []
    assert sent == [("enqueued", result.id, TaskResultStatus.READY)]
    run_until_idle()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 102
    assert (result.args, result.kwargs, result.backend, result.attempts) == ([100, 2], {}, "default", 1)
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert sent[1:] == [("started", result.id, "RUNNING"), ("finished", result.id, "SUCCESSFUL")]


@pytest.mark.usefixtures("in_process")
def test_enqueue_outside_a_transaction_commits_on_its_own():
    result = add.enqueue(1, 1)
    assert WorkflowRun.objects.filter(workflow_id=result.id).exists()
    assert WorkItem.objects.filter(run__workflow_id=result.id).exists()


@pytest.mark.usefixtures("in_process")
def test_get_result_reads_the_run_and_each_task_checks_its_own_results():
    result = add.enqueue(2, 3)
    assert add.get_result(result.id).status == TaskResultStatus.READY
    run_until_idle()
    fetched = add.get_result(result.id)
    assert (fetched.status, fetched.return_value, fetched.is_finished) == (TaskResultStatus.SUCCESSFUL, 5, True)
    assert asyncio.run(add.aget_result(result.id)).return_value == 5
    assert task_backends["default"].get_result(result.id).task.func is add.func
    with pytest.raises(Exception, match="Task does not match"):
        refuse.get_result(result.id)
    with pytest.raises(TaskResultDoesNotExist):
        add.get_result("no-such-result")


@pytest.mark.usefixtures("in_process")
def test_a_failing_task_is_failed_with_its_exception_class_and_traceback():
    result = refuse.enqueue("out of stock")
    run_until_idle()
    result.refresh()
    assert result.status == TaskResultStatus.FAILED and result.attempts == 2  # OPTIONS: retry max_attempts=2
    [error] = result.errors
    assert error.exception_class is ValueError and "out of stock" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018


@pytest.mark.usefixtures("in_process")
def test_retries_come_from_task_options_else_from_the_backends_options():
    flaky = flaky_task.enqueue(2)  # task_options(retry=RetryPolicy(max_attempts=4))
    always = always_fails.enqueue()  # OPTIONS: max_attempts=2
    run_until_idle()
    flaky.refresh()
    always.refresh()
    assert (flaky.status, flaky.return_value, flaky.attempts) == (TaskResultStatus.SUCCESSFUL, 3, 3)
    assert (always.status, always.attempts) == (TaskResultStatus.FAILED, 2)
    assert "attempt 2 failed" in always.errors[0].traceback


def test_task_options_set_a_tasks_durable_options_on_any_django():
    # Django 6.0's @task passes no options on to the backend (6.1 and the backport do), so
    # task_options() above @task is the way that works on every version.
    policy = durable.RetryPolicy(max_attempts=7)
    charged = task_options(retry=policy, timeout=12, atomic=True)(add)
    assert (charged.retry, charged.timeout, charged.atomic) == (policy, timedelta(seconds=12), True)
    assert (add.retry, add.timeout, add.atomic) == (None, None, False)  # a new task; the old one is unchanged
    assert task_options(retry={"max_attempts": 2})(add).retry == durable.RetryPolicy(max_attempts=2)
    with pytest.raises(InvalidTask, match=r"not a durable\.RetryPolicy"):
        task_options(retry="twice")(add)
    with pytest.raises(durable.WorkflowDefinitionError, match=r"task_options\(\) goes above @task"):
        task_options(atomic=True)(lambda: None)


@pytest.mark.skipif(django.VERSION[:2] == (6, 0), reason="Django 6.0's @task takes no backend options")
def test_task_passes_durable_options_to_the_backend_where_django_does():
    from tests.testapp.tasks import task

    made = task(retry=durable.RetryPolicy(max_attempts=3), timeout=timedelta(seconds=5), atomic=True)(add.func)
    assert (made.retry.max_attempts, made.timeout, made.atomic) == (3, timedelta(seconds=5), True)


@pytest.mark.usefixtures("in_process")
def test_a_task_that_takes_context_reads_its_attempt_result_and_idempotency_key():
    result = introspect.enqueue(7)
    run_until_idle()
    result.refresh()
    seen = result.return_value
    assert seen["attempt"] == 1 and seen["id"] == result.id and seen["status"] == "RUNNING"
    assert seen["same_key"] and seen["key"] and seen["value"] == 7


@pytest.mark.usefixtures("in_process")
def test_an_atomic_task_writes_exactly_once_with_its_result():
    result = bump_task.enqueue("task-bump")
    run_until_idle()
    result.refresh()
    assert result.return_value == 1 and Counter.objects.get(name="task-bump").value == 1


@pytest.mark.usefixtures("in_process")
def test_an_async_task_function_runs_to_completion():
    result = async_add.enqueue(20, 22)
    run_until_idle()
    result.refresh()
    assert result.return_value == 42


@pytest.mark.usefixtures("in_process")
def test_a_task_on_another_queue_goes_to_that_celery_queue():
    result = routed_task.enqueue()
    run_until_idle(max_items=1)  # the advance opens the step
    assert list(WorkItem.objects.filter(run__workflow_id=result.id).values_list("queue", flat=True)) == ["special"]
    other = add.using(queue_name="special").enqueue(1, 2)
    run_until_idle()
    assert add.get_result(other.id).return_value == 3
    assert WorkflowRun.objects.get(workflow_id=other.id).workflow_name.endswith(":special:tests.testapp.tasks.add")


@pytest.mark.usefixtures("in_process")
def test_run_after_defers_the_task_with_a_durable_timer_that_never_fires_early():
    later = timezone.now() + timedelta(hours=2)
    result = add.using(run_after=later).enqueue(1, 1)
    run_until_idle()
    assert add.get_result(result.id).status == TaskResultStatus.READY
    run = WorkflowRun.objects.get(workflow_id=result.id)
    assert list(HistoryEntry.objects.filter(run=run).values_list("kind", "status")) == [("sleep", "scheduled")]
    pass_time(timedelta(hours=1, minutes=59), run=run)
    assert add.get_result(result.id).status == TaskResultStatus.READY
    pass_time(timedelta(minutes=1), run=run)
    assert add.get_result(result.id).return_value == 2


def test_what_the_backend_cannot_honour_is_refused_at_enqueue():
    with pytest.raises(InvalidTask, match="priority"):
        add.using(priority=10)
    with pytest.raises(InvalidTask, match="Queue"):
        add.using(queue_name="nowhere")
    with pytest.raises(TypeError):
        add.enqueue(object(), 1)  # durable_django.SerializationError, a TypeError


def test_check_reports_bad_options_and_unknown_ones():
    backend = DurableBackend("bad", {"OPTIONS": {"retry": "often", "timeout": -1, "colour": "blue"}})
    messages = list(backend.check())
    assert sorted(message.id for message in messages) == [
        "durable_django.E005",
        "durable_django.E005",
        "durable_django.W002",
    ]
    assert list(task_backends["default"].check()) == []


@pytest.mark.usefixtures("in_process")
def test_a_task_run_is_a_workflow_run_the_admin_and_the_api_see(admin_client):
    result = add.enqueue(4, 5)
    run_until_idle()
    run = WorkflowRun.objects.get(workflow_id=result.id)
    assert run.status == WorkflowRun.Status.COMPLETED and run.result == 9
    page = admin_client.get(f"/admin/durable_django/workflowrun/{run.pk}/change/")
    assert page.status_code == 200 and "tests.testapp.tasks.add" in page.content.decode()
