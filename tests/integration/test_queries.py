"""Named queries: ``@wf.query("total")`` computes an answer from the published state and the locals."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

import durable_django as durable
from durable_django.models import HistoryEntry
from durable_django.testing import run_workflow, send_signal
from tests.testapp.workflows import cart

pytestmark = pytest.mark.django_db


def filled() -> durable.WorkflowRun:
    run = run_workflow(cart, "ann", workflow_id="cart-1")
    send_signal(run, "add", {"sku": "mug", "cents": 1200})
    return send_signal(run, "add", {"sku": "tea", "cents": 800})


def test_a_named_query_computes_its_answer_from_the_locals_with_arguments():
    run = filled()
    assert run.query("total") == 2000
    assert run.query("total", 10) == 1800
    assert durable.query("cart-1", "count") == 2
    assert run.query()["customer"] == "ann", "run.query() with no name still gives the locals"


def test_a_finished_run_answers_from_its_last_published_state_and_has_no_locals():
    run = send_signal(filled(), "add", "checkout")
    assert run.status == durable.WorkflowRun.Status.COMPLETED
    assert run.query("count") == 2
    assert run.query("variables") == {}, "a finished run's generator is gone: its locals are empty"
    assert run.query("total") == 0


def test_a_query_that_reads_only_the_state_replays_nothing_and_no_query_writes():
    run = filled()
    with CaptureQueriesContext(connection) as seen:
        assert run.query("count") == 2
    assert not [query for query in seen.captured_queries if HistoryEntry._meta.db_table in query["sql"]]
    with CaptureQueriesContext(connection) as seen:
        run.query("total")
    assert all(query["sql"].lstrip().upper().startswith("SELECT") for query in seen.captured_queries)


def test_a_query_cannot_change_the_run():
    run = filled()
    before = (run.state, list(HistoryEntry.objects.filter(run=run).values_list("seq", "status")))
    assert run.query("meddle") == "meddled"
    run.refresh_from_db()
    assert (run.state, list(HistoryEntry.objects.filter(run=run).values_list("seq", "status"))) == before
    assert run.query("total") == 2000


def test_an_unknown_query_name_lists_the_known_ones():
    run = filled()
    with pytest.raises(durable.QueryNotDefined) as caught:
        run.query("totl")
    message = str(caught.value)
    assert "workflow 'tests.cart' has no query 'totl'" in message
    assert "'broken', 'count', 'meddle', 'total', 'variables'" in message
    assert "Did you mean 'total'?" in message
    assert isinstance(caught.value, LookupError)


def test_a_query_that_raises_is_reported_with_its_error_as_the_cause():
    run = filled()
    with pytest.raises(durable.QueryFailed) as caught:
        run.query("broken")
    assert "query 'broken' of run 'cart-1' raised ZeroDivisionError: division by zero" in str(caught.value)
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


BAD_QUERIES = {
    "no name": (lambda: cart.query(""), "needs a query name"),
    "name not a str": (lambda: cart.query(3), "needs a query name"),
    "not callable": (lambda: cart.query("total2")(42), "is not a function"),
    "a second query with a name": (lambda: cart.query("total")(lambda state, variables: 0), "two queries named"),
}


@pytest.mark.parametrize("define,message", BAD_QUERIES.values(), ids=BAD_QUERIES.keys())
def test_a_bad_query_definition_is_refused_where_it_is_made(define, message):
    with pytest.raises(durable.WorkflowDefinitionError, match=message):
        define()
