"""kombu's filesystem transport, with each message whole before a worker can see it.

kombu creates a message's file, then writes it; a worker polling the folder in between
moves the empty file away and dies on it (``JSONDecodeError``, kombu issue 1551). Here a
message is written under a name no worker reads, then renamed into place, which is atomic
on POSIX. For the embedded, serverless setup of the quickstart and the demo:
``CELERY_BROKER_TRANSPORT = "durable_django.filesystem_transport:Transport"``.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

__all__ = ["Channel", "Transport"]


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]  # the stubs of kombu disagree with themselves
        # kombu's own name (the time first keeps the queue in order); a worker reads only
        # names ending in ".<queue>.msg", so the hidden ".<uuid>" is never read half written.
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{uuid.uuid4()}")
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as error:
            raise ChannelError(f"Cannot add file {final!r} to directory") from error


class Transport(filesystem.Transport):
    Channel = Channel
