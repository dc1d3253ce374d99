"""A pytest plugin (with pytest-django): enable it with ``pytest_plugins = ["durable_django.testing.pytest"]``.

The fixture ``durable_env`` gives a test database access, keeps wake-up messages in the
process (:func:`~durable_django.testing.no_broker`), and returns a
:class:`~durable_django.testing.Toolkit`: ``durable_env.run(workflow, *args)``,
``.signal(run, name, payload)``, ``.pass_time(delta)``, ``.sync_schedules()``,
``.assert_history(run, [...])``, ``.assert_replays(path)``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ..store import generator_cache
from . import Toolkit, no_broker

__all__ = ["durable_env"]


@pytest.fixture
def durable_env(db: None) -> Iterator[Toolkit]:
    """The testing toolkit, with database access and no broker (add ``transactional_db`` to commit)."""
    with no_broker():
        yield Toolkit()
    generator_cache.clear()  # generators of runs whose rows the test rolled back
