"""The benchmark project's Celery app, wired as Celery's "First steps with Django" shows."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

app = Celery("benchmarks")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from . import instrument  # noqa: E402  (profiling hooks, inactive unless BENCH_PROFILE_DIR is set)

instrument.connect(app)
