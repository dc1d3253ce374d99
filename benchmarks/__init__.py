"""Benchmarks for durable_django against a plain Celery chain and DBOS Transact, on PostgreSQL and Redis.

Run them with ``make bench`` (or ``python -m benchmarks.run --help``); see docs/performance.md.
"""
