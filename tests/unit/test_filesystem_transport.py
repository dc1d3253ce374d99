"""The embedded broker hands a worker only whole messages, however fast it polls."""

from __future__ import annotations

import threading
from pathlib import Path

from kombu import Connection

BIG = "x" * 200_000  # a write long enough for a poll to land in the middle of it
MESSAGES = 150


def _connection(folder: Path, transport: str) -> Connection:
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "polling_interval": 0}
    return Connection("filesystem://", transport=transport, transport_options=options)


def _race(folder: Path, transport: str) -> tuple[int, list[BaseException]]:
    received, errors = 0, list[BaseException]()
    done = threading.Event()

    def produce() -> None:
        try:
            with _connection(folder, transport) as connection:
                queue = connection.SimpleQueue("race")
                for number in range(MESSAGES):
                    queue.put({"n": number, "pad": BIG})
        except Exception as error:  # shown by the assertion, not lost in the thread
            errors.append(error)
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    with _connection(folder, transport) as connection:
        queue = connection.SimpleQueue("race")
        while received < MESSAGES:
            try:
                message = queue.get(block=True, timeout=30)
            except queue.Empty:
                break
            except Exception as error:  # what kombu's own transport raises on a half-written file
                errors.append(error)
                continue
            assert message.payload["pad"] == BIG
            message.ack()
            received += 1
    producer.join(timeout=60)
    return received, errors


def test_every_message_arrives_whole(tmp_path: Path) -> None:
    received, errors = _race(tmp_path, "durable_django.filesystem_transport:Transport")
    assert not errors, errors
    assert received == MESSAGES, f"{received} of {MESSAGES} arrived"
