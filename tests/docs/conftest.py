"""One docs project for the whole session: the quickstart's, which every other page extends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .harness import DOCS, Project

QUICKSTART = DOCS / "quickstart.md"
#: The pages with runnable examples, in the order a reader meets them.
PAGES = (
    "timers.md",
    "signals.md",
    "parallel.md",
    "child-workflows.md",
    "cancellation.md",
    "long-steps.md",
    "continue-as-new.md",
    "workflow-info.md",
    "updates.md",
    "versioning.md",
    "tasks.md",
    "async.md",
    "finding-runs.md",
    # Last: its schedules fire on days other pages let pass; it pauses them before it ends.
    "schedules.md",
)
CAPABILITY_PAGES = [DOCS / name for name in PAGES]
#: "Testing your workflows": followed last, by test_testing.py, which also counts the tests it ran.
TESTING_PAGE = DOCS / "testing.md"


@pytest.fixture(scope="session")
def docs_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The quickstart followed as written, with every page's code added before its worker starts."""
    project = Project(tmp_path_factory.mktemp("docs"))
    project.pages_to_add = [*CAPABILITY_PAGES, TESTING_PAGE]
    try:
        project.follow(QUICKSTART)
        yield project
    finally:
        project.stop()
