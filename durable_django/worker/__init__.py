"""The worker shell: what runs inside a Celery worker process, kept thin.

The step runner (:mod:`.runner`) claims a work item, runs its step outside or inside a
transaction, and records the outcome through the store. The sweeper (:mod:`.sweeper`)
republishes work whose message was lost and fires due timers. :mod:`.celery_signals`
wires both into Celery's worker lifecycle; :mod:`.connections` keeps database connections
healthy between tasks.
"""
