"""The replay core: pure functions of a workflow and its history, with no I/O.

A workflow is a generator that yields requests (:mod:`.requests`); the interpreter
(:mod:`.interpreter`) drives it, and the engine (:mod:`.engine`) feeds it recorded
outcomes and says what must happen next, as commands for the store to persist. Values
cross as JSON that round-trips exactly (:mod:`.codec`), and due times stay within what a
database can hold (:mod:`.durations`). Nothing here touches the database,
Celery or a clock, so most tests hit this package directly; the layer contract in
``tests/test_layers.py`` keeps it that way.
"""
