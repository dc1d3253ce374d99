"""What workflow code and steps report about themselves, for the checker to read back.

Two kinds of records:

- ``{"t": "yield", "scope", "gen", "i", "o"}``: yield number ``i`` of run ``scope`` in
  generation ``gen`` returned or raised ``o``. Workflow code runs again on every replay,
  so the same record may be written many times; the reader keeps one per key and reports
  a key that was written with two different outcomes (a replay that disagreed).
- ``{"t": "attempt", "tag", "n", "key", "phase"}``: attempt ``n`` of step ``tag`` (with its
  idempotency key) started (``phase`` "start") or returned (``"end"``).

In-process (the inline test) records go to a list. With ``CONFORMANCE_JOURNAL`` set (a
real worker), each record is one line appended to that file with a single ``write``, so
records of concurrent processes do not interleave and a SIGKILL loses at most the line
being written.
"""

from __future__ import annotations

import json
import os
from typing import Any

ENV = "CONFORMANCE_JOURNAL"
_memory: list[dict[str, Any]] = []


def write(record: dict[str, Any]) -> None:
    path = os.environ.get(ENV)
    if not path:
        _memory.append(record)
        return
    line = (json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n").encode()
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line)
    finally:
        os.close(descriptor)


def read(path: str | None = None) -> list[dict[str, Any]]:
    """Every record so far: from the file at ``path``, or from memory."""
    if path is None:
        return list(_memory)
    records = []
    try:
        with open(path, encoding="utf-8") as lines:
            for line in lines:
                try:
                    records.append(json.loads(line))
                except ValueError:  # the line a killed process was writing
                    continue
    except FileNotFoundError:
        pass
    return records


def reset() -> None:
    _memory.clear()


def committed_yields(records: list[dict[str, Any]]) -> dict[tuple[str, int, int], dict[str, Any]]:
    """The last report of each yield, keeping only what the committed advances saw.

    An advance can report what it saw and then be rolled back (a kill). A run reports its
    yields in order, and every advance that commits reports again from where its generator
    stood (from the start, on a replay), so a report of yield ``(gen, i)`` voids the run's
    reports after it: the reports left at the end are the committed ones.
    """
    seen: dict[tuple[str, int, int], dict[str, Any]] = {}
    for record in records:
        if record.get("t") != "yield":
            continue
        key = (record["scope"], record["gen"], record["i"])
        for later in [k for k in seen if k[0] == key[0] and k[1:] > key[1:]]:
            del seen[later]
        seen[key] = record
    return seen
