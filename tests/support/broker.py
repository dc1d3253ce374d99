"""The test broker, Redis or RabbitMQ, emptied between tests."""

from __future__ import annotations

from django.conf import settings


def empty_the_broker(queues: tuple[str, ...]) -> None:
    """No message of an earlier test may reach this test's worker."""
    if settings.BROKER_IS_REDIS:
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
        return
    from tests.celery_app import app

    with app.connection_for_write() as connection:
        for queue in queues:
            try:
                connection.default_channel.queue_purge(queue)
            except Exception:  # not declared yet: nothing in it
                connection.close()
                connection = app.connection_for_write()
