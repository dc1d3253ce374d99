"""The store: applies the core's decisions to the database, one short transaction at a time.

A run advances under its row lock (:mod:`.advance`), reading its history and inbox
lazily; workers take, record, park and release work items (:mod:`.work_items`), on
PostgreSQL often in one statement (:mod:`.fastpath`), fenced by leases (:mod:`.leases`).
Wake-up messages leave through the outbox after commit (:mod:`.outbox`). A run's life
events outside its generator (finishing, cancelling, continuing as new) are in
:mod:`.lifecycle`. The store knows nothing of Celery workers or the operator tools.
"""
