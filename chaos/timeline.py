"""The run's timeline: what happened when, in seconds since the first start, also kept in ``timeline.jsonl``."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class Timeline:
    """What happened when, in seconds since the first start; also appended to ``timeline.jsonl``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.t0 = time.monotonic()
        self.events: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 3)

    def record(self, kind: str, **details: Any) -> dict[str, Any]:
        event = {"t": self.now(), "wall": time.time(), "kind": kind, **details}
        with self._lock:
            self.events.append(event)
            with open(self.path, "a") as out:
                out.write(json.dumps(event, default=str) + "\n")
        return event
