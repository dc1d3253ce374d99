"""Django settings for the benchmark driver and its Celery worker processes.

Everything comes from ``BENCH_*`` variables that ``benchmarks.run`` sets, so a shell that
exports the test suite's ``DATABASE_URL`` or ``CELERY_BROKER_URL`` never redirects a
benchmark (nor lets a benchmark flush the tests' broker).
"""

import environ

env = environ.Env()

SECRET_KEY = "benchmarks-only"
DEBUG = False  # DEBUG=True would keep every SQL statement in memory and slow every query down.
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["durable_django", "benchmarks.benchapp"]

DATABASES = {"default": env.db("BENCH_DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/durable_bench")}

CELERY_BROKER_URL = env.str("BENCH_BROKER_URL", default="redis://127.0.0.1:6379/14")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Unset (Celery's default): Celery closes Django's connections around every task. Set it for
# the "connection reused" chain baseline; durable_django keeps its own connection either way.
if env.str("CELERY_DB_REUSE_MAX", default=""):
    CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX")

# The chain baselines run a plain Celery worker: no durable_django sweeper thread.
DURABLE_WORKER_SWEEPER = env.bool("BENCH_SWEEPER", default=True)
# BENCH_GENERATOR_CACHE_SIZE=0 makes every step replay its workflow from the start: it shows
# what the worker-local generator cache saves (the per-step ratio at 1,000 steps).
if env.str("BENCH_GENERATOR_CACHE_SIZE", default=""):
    DURABLE_GENERATOR_CACHE_SIZE = env.int("BENCH_GENERATOR_CACHE_SIZE")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"durable_django": {"level": "INFO"}},
}
