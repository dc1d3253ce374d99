"""Django settings of the chaos project: the harness's own PostgreSQL and Redis, given by environment.

The orchestrator and every worker it starts read the same variables: ``CHAOS_PG_PORT``,
``CHAOS_REDIS_PORT`` (or ``CHAOS_BROKER_URL``, for RabbitMQ), ``CHAOS_API_URL`` and ``CHAOS_DIR``
(the run's artifact folder).
"""

import os

SECRET_KEY = "chaos"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["durable_django", "chaos.shop"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("CHAOS_PG_DB", "chaos"),
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": os.environ.get("CHAOS_PG_PORT", "5432"),
        # A dead server must not hang anyone: connect fails fast, and libpq notices dead peers.
        "OPTIONS": {"connect_timeout": 3, "keepalives_idle": 5, "keepalives_interval": 2, "keepalives_count": 2},
    }
}

_REDIS = f"redis://127.0.0.1:{os.environ.get('CHAOS_REDIS_PORT', '6379')}/0"
CELERY_BROKER_URL = os.environ.get("CHAOS_BROKER_URL") or _REDIS
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
if CELERY_BROKER_URL.startswith("redis"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 5, "socket_keepalive": True}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

CHAOS_API_URL = os.environ.get("CHAOS_API_URL", "http://127.0.0.1:0")
CHAOS_DIR = os.environ.get("CHAOS_DIR", "")

# Recovery settings of a small deployment that wants to recover in seconds.
DURABLE_SWEEP_INTERVAL = 0.5
DURABLE_REPUBLISH_AFTER = 2.0
DURABLE_REPUBLISH_AFTER_BUSY = 8.0
DURABLE_LEASE_GRACE = 1.0

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {"durable_django": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}
