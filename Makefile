# The two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.bench-installed

.PHONY: demo test test-next test-django6.0 test-sqlite test-rabbitmq browser bench chaos chaos-smoke fuzz clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

## Run the example project on SQLite with an embedded broker; a worker is SIGKILLed mid-step.
demo: $(STAMP)
	$(PY) -m example_project.demo

## The admin's browser test drives Debian's headless Chromium: installed with apt when missing
## (as root); otherwise that one test is skipped, and fails under CI=true.
browser:
	@if [ -x /usr/bin/chromium ] && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing chromium and chromium-driver with apt (for the admin's browser test)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			chromium chromium-driver >/dev/null; } || echo "apt could not install them: the browser test will say so"; \
	else \
		echo "No chromium/chromedriver, and not root to install them: the admin's browser test is skipped"; \
		echo "(apt-get install chromium chromium-driver, or run make test as root)"; \
	fi

## Run the whole test suite (PostgreSQL and Redis tests run when reachable, required when CI=true).
test: $(STAMP) browser
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS)

## The same suite on the newest Python and Django (Django 6 needs Python 3.12 or newer).
PYTHON_NEXT ?= $(shell PYENV_VERSION=3.13.0 pyenv which python3.13 2>/dev/null || command -v python3.13)
VENV_NEXT ?= .venv-next
STAMP_NEXT := $(VENV_NEXT)/.installed

$(STAMP_NEXT): pyproject.toml
	@test -n "$(PYTHON_NEXT)" || { echo "python3.13 not found: set PYTHON_NEXT=/path/to/python3.12+"; exit 1; }
	$(PYTHON_NEXT) -m venv $(VENV_NEXT)
	$(VENV_NEXT)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_NEXT)/bin/python -m pip install --quiet -e ".[test]" "django>=6.0"
	touch $(STAMP_NEXT)

test-next: $(STAMP_NEXT) browser
	TEST_DB_NAME=$${TEST_DB_NAME:-durable_django_test}_next $(VENV_NEXT)/bin/python -m pytest $(PYTEST_ARGS)

## The parts that differ between Django releases (the task API's @task, the admin's markup) again
## on Django 6.0, the first Django 6: test-next runs the newest, and 6.1 changed both.
PYTHON_DJANGO60 ?= $(shell PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null || command -v python3.12)
VENV_DJANGO60 ?= .venv-django6.0
STAMP_DJANGO60 := $(VENV_DJANGO60)/.installed

$(STAMP_DJANGO60): pyproject.toml
	@test -n "$(PYTHON_DJANGO60)" || { echo "python3.12 not found: set PYTHON_DJANGO60=/path/to/python3.12+"; exit 1; }
	$(PYTHON_DJANGO60) -m venv $(VENV_DJANGO60)
	$(VENV_DJANGO60)/bin/python -m pip install --quiet --upgrade pip
	$(VENV_DJANGO60)/bin/python -m pip install --quiet -e ".[test]" "django>=6.0,<6.1"
	touch $(STAMP_DJANGO60)

test-django6.0: $(STAMP_DJANGO60) browser
	TEST_DB_NAME=$${TEST_DB_NAME:-durable_django_test}_django60 $(VENV_DJANGO60)/bin/python -m pytest \
		tests/admin tests/integration/test_task_backend.py tests/integration/test_task_backend_worker.py \
		tests/docs tests/unit tests/test_public_api.py $(PYTEST_ARGS)

## The database-independent tests again on SQLite, with real worker processes beside the test process.
test-sqlite: $(STAMP) browser
	TEST_DATABASE=sqlite TEST_DB_NAME=$${TEST_DB_NAME:-durable_django_test}_sqlite $(PY) -m pytest $(PYTEST_ARGS)

## The tests that start real workers, again with RabbitMQ as the broker (RABBITMQ_URL: server and vhost).
RABBITMQ_URL ?= amqp://guest:guest@127.0.0.1:5672//
test-rabbitmq: $(STAMP)
	CELERY_BROKER_URL=$(RABBITMQ_URL) $(PY) -m pytest -m "broker and not redis" $(PYTEST_ARGS)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $(BENCH_STAMP)

## Throughput, commits per step, 100,000 sleepers, against a Celery chain and DBOS (the bench extra).
bench: $(BENCH_STAMP)
	$(PY) -m benchmarks.run $(BENCH_ARGS)

## The chaos harness: order workflows and composed ones (signal loops, sagas cancelled at random points,
## children, continue-as-new) under worker kills, database and broker faults (docs/chaos.md).
## Its own PostgreSQL, Redis, fake payment API and workers on loopback ports; about 5 minutes.
chaos: $(STAMP)
	$(PY) -m chaos --profile full $(CHAOS_ARGS)

## The same, short (200 orders and 50 composed workflows, a minute or two): CI runs it on every submission.
chaos-smoke: $(STAMP)
	$(PY) -m chaos --profile smoke $(CHAOS_ARGS)

## Generated programs against a real Celery worker SIGKILLed at random, checked against the reference model
## (tests/conformance). Reproducible by seed: make fuzz FUZZ_ARGS="--programs 200 --seed 7 --kills".
FUZZ_ARGS ?= --programs 2000 --kills
fuzz: $(STAMP)
	$(PY) -m tests.conformance.fuzz $(FUZZ_ARGS)

clean:
	rm -rf $(VENV) $(VENV_NEXT) var
