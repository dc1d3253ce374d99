from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from durable_django.store import generator_cache
from tests.support.broker import empty_the_broker
from tests.support.processes import CeleryWorker

IN_CI = os.environ.get("CI", "").lower() == "true"


def pytest_configure(config: pytest.Config) -> None:
    if IN_CI and not settings.POSTGRES and os.environ.get("TEST_DATABASE") != "sqlite":
        raise pytest.UsageError("CI=true needs PostgreSQL on 127.0.0.1:5432; .ci/run starts it")
    if IN_CI and not settings.REDIS:
        raise pytest.UsageError("CI=true needs Redis on 127.0.0.1:6379; .ci/run starts it")
    if IN_CI and not settings.BROKER:
        raise pytest.UsageError(f"CI=true needs the broker at {settings.CELERY_BROKER_URL}; .ci/run starts it")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = {
        "postgres": None if settings.POSTGRES else "needs PostgreSQL; this session runs on SQLite",
        "broker": None if settings.BROKER else f"the broker is not reachable at {settings.CELERY_BROKER_URL}",
        "redis": None if settings.REDIS else "Redis is not reachable on 127.0.0.1:6379",
    }
    for item in items:
        for marker, reason in missing.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _fresh_generator_cache() -> Iterator[None]:
    generator_cache.clear()
    yield
    generator_cache.clear()


@pytest.fixture(autouse=True)
def _close_connections_of_sync_to_async() -> Iterator[None]:
    """Close what asyncio.run() + sync_to_async opened in asgiref's thread, as a request's end would.

    Outside an async_to_sync caller, thread-sensitive sync code runs in a thread of its own,
    whose database connection would outlive the test (and keep the test database in use).
    """
    yield
    from asgiref.sync import SyncToAsync

    executor = SyncToAsync.single_thread_executor
    if getattr(executor, "_threads", None):
        from django.db import connections

        executor.submit(connections.close_all).result(timeout=10)


@pytest.fixture
def no_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Publishing succeeds and sends nothing: for tests that work items in this process."""
    from durable_django.store import outbox

    monkeypatch.setattr(outbox, "send_message", lambda item_id, options: None)


@pytest.fixture
def ledger() -> Iterator[None]:
    """The fake payment provider's ledger, empty for each test."""
    from example_project.shop import payments

    payments.reset()
    yield


@pytest.fixture
def worker_env(django_db_setup: None, django_db_blocker: object) -> dict[str, str]:
    """Environment that points a worker process at this session's test database and broker."""
    from django.db import connection

    database = connection.settings_dict
    broker = {"CELERY_BROKER_URL": settings.CELERY_BROKER_URL}
    if connection.vendor == "sqlite":
        return {"SQLITE_PATH": database["NAME"], "TEST_DATABASE": "sqlite", **broker}
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    return {"DATABASE_URL": url, "TEST_DATABASE": "postgres", **broker}


@pytest.fixture
def worker(worker_env: dict[str, str], tmp_path: Path, transactional_db: None) -> Iterator[CeleryWorker]:
    """A running Celery worker process tree (prefork, 2 children), stopped after the test."""
    empty_the_broker(("celery", "special"))
    process = CeleryWorker("tests.celery_app", worker_env, tmp_path, queues="celery,special")
    process.start()
    try:
        yield process
    finally:
        process.kill()
