# What `pytest_plugins = ["durable_django.testing.pytest"]` in a root conftest.py registers
# (pytest allows pytest_plugins only there; docs/testing.md's test uses that form).
from durable_django.testing.pytest import durable_env  # noqa: F401
