"""docs/testing.md, run as written on the quickstart's project; then the tests it wrote are counted."""

from __future__ import annotations

import re
import sys

from .conftest import TESTING_PAGE
from .harness import blocks

# The change the page's failure message describes: a day's sleep before the wait.
CHANGED_CODE = """
from datetime import timedelta
import durable_django as durable
from durable_django.core import registry
from durable_django.testing import assert_replays

@durable.workflow(name="shop.workflows.layaway_changed")
def layaway(order_id):
    yield durable.sleep(timedelta(days=1))

registry._workflows["shop.workflows.layaway"] = layaway
try:
    assert_replays("shop/histories/layaway-1.json")
except AssertionError as error:
    print(error)
"""


def test_the_testing_page_runs_as_written_and_its_tests_pass(docs_project):
    before = docs_project.checked_outputs
    docs_project.follow(TESTING_PAGE)

    assert docs_project.checked_outputs >= before + 2, "the page's shell sessions printed nothing to check"
    assert not docs_project.live_runs, f"the page leaves runs that have not finished: {docs_project.live_runs}"
    for command in (
        "python manage.py test shop",
        "pytest --ds=mysite.settings shop/test_layaway.py",
        "python manage.py test shop.test_histories",
    ):
        assert command in docs_project.ran, f"the page no longer runs {command!r}"
    unittest = docs_project.run(sys.executable, "manage.py", "test", "shop", "-v", "2").stderr
    assert re.search(r"^Ran 4 tests in .*\n\nOK$", unittest, re.MULTILINE), unittest
    assert "test_recorded_runs_replay_with_this_code" in unittest
    pytest = docs_project.run(
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--ds=mysite.settings", "shop/test_layaway.py"
    ).stdout
    assert re.search(r"\b1 passed\b", pytest), pytest


def test_the_failure_the_page_shows_is_what_a_changed_workflow_gets(docs_project):
    shown = [block.text.strip() for block in blocks(TESTING_PAGE) if block.text.startswith("shop/histories/")]
    assert len(shown) == 1, "the page's replay failure message moved"
    printed = docs_project.run(sys.executable, "manage.py", "shell", "-c", CHANGED_CODE).stdout.strip()
    assert printed.splitlines()[-1] == shown[0]
