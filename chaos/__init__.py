"""The chaos harness: order workflows under worker kills, database and broker faults.

``python -m chaos --profile full|smoke`` (or ``make chaos`` / ``make chaos-smoke``)
starts its own PostgreSQL, Redis, fake payment API and Celery workers on loopback ports,
runs order workflows and composed ones while it injects faults into those processes only, then checks the
invariants against the app database and the payment API's ledger. See docs/chaos.md.

Modules, one job each: ``services`` (PostgreSQL, Redis, the fake API as processes),
``fakeapi`` (the payment API server), ``cluster`` (the Celery workers), ``workload``
(starts, signals, cancels), ``composed`` (the composed workload: signal loops, sagas,
children, subscriptions, ballots), ``schedule`` (which fault when), ``injector`` (the
faults; ``activity``, what the workers hold, by which it aims them; ``broker_faults``),
``timeline`` (what happened when), ``checker`` (the invariants; ``order_checker``, each
order's; ``composed_checker`` and ``composed_signals_checker``, the composed workload's),
``progress`` (counts while it runs and drains), ``report`` (summary and JSON), ``run``
(the orchestration), ``cli`` (the command line), ``profiles`` (full, smoke).
"""
