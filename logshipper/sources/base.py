"""What every source is: started with an `emit` coroutine, stopped; events leave in `Batch`es.

`emit(batch)` returns once the pipeline accepted the batch; under the `block` buffer policy it waits
while the buffer is full, and that wait is the backpressure a source passes on (stop reading files,
stop acknowledging forward chunks). A source commits its position only in the batch's `ack`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from hostwatch.core.events import Batch

Emit = Callable[[Batch], Awaitable[None]]


class Source(Protocol):
    name: str  # the `source` label of its telemetry: docker_json, journald, fluent_forward, gelf

    async def start(self, emit: Emit) -> None:
        """Begin reading or serving; returns once running (a listener is bound, files are opened)."""
        ...

    async def stop(self) -> None:
        """Stop intake and release sockets and files; acks of batches already emitted may still arrive."""
        ...
