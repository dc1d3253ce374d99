"""The chaos harness: order workflows under worker kills, database and broker faults.

``python -m chaos --profile full|smoke`` (or ``make chaos`` / ``make chaos-smoke``)
starts its own PostgreSQL, Redis, fake payment API and Celery workers on loopback ports,
runs order workflows while it injects faults into those processes only, then checks the
invariants against the app database and the payment API's ledger. See docs/chaos.md.

Modules, one job each: ``services`` (PostgreSQL, Redis, the fake API as processes),
``fakeapi`` (the payment API server), ``cluster`` (the Celery workers), ``workload``
(starts, signals, cancels), ``injector`` (the faults), ``checker`` (the invariants),
``report`` (summary and JSON), ``run`` (the orchestration), ``profiles`` (full, smoke).
"""
