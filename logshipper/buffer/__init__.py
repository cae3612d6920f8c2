"""The buffer between encoding and the sink: `memory` or `disk`, `block` or `drop_newest` (base.py has
the protocol). `open_buffer` builds the configured one; the caller awaits its `open()`."""

from __future__ import annotations

from pathlib import Path

from logshipper.buffer.base import Buffer
from logshipper.buffer.disk import DiskBuffer
from logshipper.buffer.memory import MemoryBuffer
from logshipper.buffer.room import BufferClosed
from logshipper.config import BufferConfig
from logshipper.telemetry import ShipperMetrics

__all__ = ["Buffer", "BufferClosed", "DiskBuffer", "MemoryBuffer", "open_buffer"]


def open_buffer(config: BufferConfig, state_dir: Path, metrics: ShipperMetrics) -> Buffer:
    """The buffer `config.type` names; a disk buffer keeps its segments under `state_dir`/buffer."""
    if config.type == "memory":
        return MemoryBuffer(config, metrics)
    return DiskBuffer(config, state_dir, metrics)
