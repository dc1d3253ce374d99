"""Test settings: PostgreSQL when reachable (or DATABASE_URL), else SQLite; Redis broker, or RabbitMQ.

``CELERY_BROKER_URL`` picks the broker: Redis database 15 by default; ``make test-rabbitmq``
points it at RabbitMQ (``amqp://...``) and runs the tests that start real workers again.
"""

import os
import socket
import tempfile
from datetime import timedelta
from urllib.parse import urlsplit

import django
import environ

env = environ.Env()


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


#: Names everything this test session owns, so sessions from other checkouts can run beside it.
TEST_DB_NAME = env.str("TEST_DB_NAME", default="durable_django_test")
POSTGRES = env.str("TEST_DATABASE", default="postgres" if reachable("127.0.0.1", 5432) else "sqlite") == "postgres"
REDIS = reachable("127.0.0.1", 6379)
SECRET_KEY = "tests"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "durable_django",
    "example_project.shop",
    "tests.testapp",
    # Django 5.2: the django.tasks backport's system checks (Django 6 has them built in).
    *(["django_tasks"] if django.VERSION < (6,) else []),
    "tests.conformance",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "example_project.urls"
STATIC_URL = "static/"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
if POSTGRES:
    DATABASES = {"default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/test")}
    DATABASES["default"]["TEST"] = {"NAME": TEST_DB_NAME}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # A worker process started by the tests is pointed straight at the test file.
            "NAME": env.str("SQLITE_PATH", default=os.path.join(tempfile.gettempdir(), f"{TEST_DB_NAME}_main.sqlite3")),
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30, "init_command": "PRAGMA journal_mode=WAL;"},
            "TEST": {"NAME": os.path.join(tempfile.gettempdir(), f"{TEST_DB_NAME}.sqlite3")},
        }
    }

# A second database, for the tests that check a start() refuses a transaction on another one.
DATABASES["other"] = {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.path.join(tempfile.gettempdir(), f"{TEST_DB_NAME}_other.sqlite3"),
    "TEST": {"NAME": os.path.join(tempfile.gettempdir(), f"{TEST_DB_NAME}_other_test.sqlite3")},
}

# Every @task in tests.testapp.tasks runs as a durable run on the suite's workers.
TASKS = {
    "default": {
        "BACKEND": "durable_django.task_backend.DurableBackend",
        "QUEUES": ["default", "special"],
        "OPTIONS": {"retry": {"max_attempts": 2, "initial_interval": timedelta(0)}},
    }
}

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/15")
_BROKER = urlsplit(CELERY_BROKER_URL)
BROKER_IS_REDIS = _BROKER.scheme.startswith("redis")
BROKER = reachable(_BROKER.hostname or "127.0.0.1", _BROKER.port or (6379 if BROKER_IS_REDIS else 5672))
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]

# One ledger per test database: test runs side by side on one machine (different TEST_DB_NAME)
# must not see, or reset, each other's charges.
PAYMENTS_LEDGER = env.str(
    "PAYMENTS_LEDGER", default=os.path.join(tempfile.gettempdir(), f"{TEST_DB_NAME}_ledger.sqlite3")
)
PAYMENTS_LATENCY = env.float("PAYMENTS_LATENCY", default=0.2)

# A worker process may get its own (the schedule race test staggers its sweepers).
DURABLE_SWEEP_INTERVAL = env.float("DURABLE_SWEEP_INTERVAL", default=0.5)
DURABLE_REPUBLISH_AFTER = 2.0
DURABLE_REPUBLISH_AFTER_BUSY = 20.0
DURABLE_LEASE_GRACE = 1.0
