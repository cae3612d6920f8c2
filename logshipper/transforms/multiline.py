"""Opt-in joining of Java stack traces, Python tracebacks and Go panics into one event.

Lines are joined per stream: (source, container id, or name, file, unit, app; stdout/stderr). A line
that starts a trace (`Exception: ...`, `Traceback (most recent call last):`, `panic: ...`,
`goroutine N [...]:`) is held; the lines that continue it (the rules of Google's detect-exceptions,
which GKE's log agent uses) are added; the first line that does not continue it releases the joined
event (message = the lines joined with "\\n", the first line's time, id and offset) and is then taken
on its own. Blank lines and Python's "During handling of the above exception..." are taken only when a
later line confirms them (the next goroutine, the chained Traceback); otherwise they stay lines of their
own. A held trace also goes out `flush_timeout` after its last line, or at `max_lines`, or when it
would exceed `max_message_bytes` (the rest of a long trace then forms the next event).

Acks: each source batch has an `_Origin` counting what still holds its events: the output batches that
carry them and the open traces they were joined into. Its ack runs when the count reaches zero, so a
batch whose last line began a trace is acknowledged only once the event joined from it (emitted in a
later batch) is delivered; checkpoints never pass a line that is still held. Order is kept per stream;
a held trace lets lines of other streams (even the same container's other stream) overtake it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hostwatch.core.events import Ack, Batch, LogEvent
from logshipper.config import DEFAULT_MAX_MESSAGE_BYTES, MultilineConfig

MAX_OPEN = 10_000  # streams with a trace held at once; beyond, the oldest is released as it is
MIN_TICK = 0.01

# states of a trace being joined
JAVA_EXC, JAVA, JAVA_NESTED = 1, 2, 3
PY, PY_DONE, PY_BLANK, PY_CHAIN, PY_BLANK2 = 10, 11, 12, 13, 14
GO_PANIC, GO_SIGNAL, GO_GOROUTINE, GO_FRAME1, GO_FRAME2 = 20, 21, 22, 23, 24

TRACEBACK = "Traceback (most recent call last):"
PY_CHAINED = ("During handling of the above exception, another exception occurred:",
              "The above exception was the direct cause of the following exception:")
JAVA_START_RE = re.compile(r"(?:Exception|Error|Throwable)(?::|$)")
JAVA_NESTED_RE = re.compile(r"[\t ]*nested exception is:[\t ]*")
JAVA_AT_RE = re.compile(r"[\t ]+(?:eval )?at ")
JAVA_CAUSED_RE = re.compile(r"[\t ]*(?:Caused by|Suppressed):")
JAVA_MORE_RE = re.compile(r"[\t ]*\.\.\. \d+ (?:more|common frames omitted)")
PY_FINAL_RE = re.compile(r"(?:[^\s.():]+\.)*[^\s.():]+(?::|$)")
GO_GOROUTINE_RE = re.compile(r"goroutine \d+ \[[^\]]+\]:$")
GO_FUNC_RE = re.compile(r"(?:[^\s.:]+\.)*[^\s.():]+\(|created by |\.\.\.(?:\d+|additional) frames elided\.\.\.$")

Step = tuple[int, bool]  # (next state, tentative: joins only if a later line confirms it)


def start_state(m: str) -> int | None:
    """The state a line that begins a trace puts its stream in; None for an ordinary line."""
    if m.startswith("Traceback"):
        return PY if m == TRACEBACK else None
    if m.startswith("panic: ") or m.startswith("fatal error: "):
        return GO_PANIC
    if m.startswith("goroutine ") and GO_GOROUTINE_RE.match(m):
        return GO_FRAME1
    if "http: panic serving" in m:
        return GO_PANIC
    if ("Exception" in m or "Error" in m or "Throwable" in m) and JAVA_START_RE.search(m):
        return JAVA_EXC
    return None


def step(state: int, m: str) -> Step | None:
    """Where line `m` takes a trace in `state`, or None when it does not continue it."""
    blank = not m.strip()
    if state in (JAVA_EXC, JAVA):
        if JAVA_AT_RE.match(m) or JAVA_MORE_RE.match(m):
            return JAVA, False
        if JAVA_CAUSED_RE.match(m):
            return JAVA_EXC, False
        if JAVA_NESTED_RE.match(m):
            return JAVA_NESTED, False
        return (JAVA_EXC, True) if blank and state == JAVA_EXC else None
    if state == JAVA_NESTED:
        return (JAVA_EXC, False) if JAVA_START_RE.search(m) else None
    if state == PY:
        if m[:1] in (" ", "\t"):
            return PY, False
        return (PY_DONE, False) if PY_FINAL_RE.match(m) else None
    if state == PY_DONE:
        return (PY_BLANK, True) if blank else None
    if state == PY_BLANK:
        return (PY_CHAIN, True) if m in PY_CHAINED else None
    if state == PY_CHAIN:
        return (PY_BLANK2, True) if blank else None
    if state == PY_BLANK2:
        return (PY, False) if m == TRACEBACK else None
    if state == GO_PANIC:
        if m.startswith("\t"):
            return GO_PANIC, False
        if m.startswith("[signal "):
            return GO_SIGNAL, False
        if m.startswith("goroutine ") and GO_GOROUTINE_RE.match(m):
            return GO_FRAME1, False
        return (GO_GOROUTINE, True) if blank else None
    if state == GO_SIGNAL:
        return (GO_GOROUTINE, True) if blank else None
    if state == GO_GOROUTINE:
        return (GO_FRAME1, False) if GO_GOROUTINE_RE.match(m) else None
    if state == GO_FRAME1:
        if GO_FUNC_RE.match(m):
            return GO_FRAME2, False
        return (GO_GOROUTINE, True) if blank else None
    if state == GO_FRAME2:
        return (GO_FRAME1, False) if m[:1].isspace() else None
    return None


class _Origin:
    """One source batch: its ack runs once nothing holds any of its events any more."""

    __slots__ = ("ack", "refs")

    def __init__(self, ack: Ack | None) -> None:
        self.ack = ack
        self.refs = 1  # held while its batch is being processed

    def release(self) -> None:
        self.refs -= 1
        if self.refs == 0 and self.ack is not None:
            ack, self.ack = self.ack, None
            ack()


Line = tuple[LogEvent, _Origin]


@dataclass(slots=True)
class _Trace:
    state: int
    source: str
    lines: list[Line]
    nbytes: int
    touched: float
    tentative: list[Line] = field(default_factory=list)
    holds: dict[_Origin, None] = field(default_factory=dict)  # an ordered set: each holds one ref

    def hold(self, origin: _Origin) -> None:
        if origin not in self.holds:
            self.holds[origin] = None
            origin.refs += 1


def stream_key(source: str, e: LogEvent) -> tuple[str, str | None, str | None]:
    who = e.container_id or e.container_name or e.file_path
    if who is None and e.fields:
        who = e.fields.get("systemd.unit") or e.fields.get("log.syslog.appname")
    return source, who, e.stream


class _Output:
    """An output batch being built: its events and the origins it will hold."""

    __slots__ = ("events", "origins", "released")

    def __init__(self) -> None:
        self.events: list[LogEvent] = []
        self.origins: dict[_Origin, None] = {}
        self.released: list[_Origin] = []  # refs of closed traces, dropped once the output holds them

    def add(self, e: LogEvent, origin: _Origin) -> None:
        self.events.append(e)
        self.origins[origin] = None

    def batch(self, source: str) -> Batch | None:
        for o in self.origins:
            o.refs += 1
        for o in self.released:
            o.release()
        if not self.events:
            return None
        origins = list(self.origins)

        def ack() -> None:
            for o in origins:
                o.release()

        return Batch(self.events, ack, source)


class Joiner:
    """The synchronous core: batches in, batches out, a clock for the timeout."""

    def __init__(self, max_lines: int, flush_timeout: float, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_lines = max_lines
        self.flush_timeout = flush_timeout
        self.max_message_bytes = max_message_bytes
        self._clock = clock
        self._open: dict[tuple[str, str | None, str | None], _Trace] = {}  # creation order
        self._carry: dict[tuple[str, str | None, str | None], tuple[int, float]] = {}  # a trace cut at max_lines

    @property
    def held(self) -> int:
        return sum(len(t.lines) + len(t.tentative) for t in self._open.values())

    def process(self, batch: Batch) -> Batch | None:
        origin = _Origin(batch.ack)
        out = _Output()
        now = self._clock()
        for e in batch.events:
            self._feed(stream_key(batch.source, e), e, origin, out, now)
        result = out.batch(batch.source)
        origin.release()
        return result

    def flush_expired(self) -> list[Batch]:
        """Release the traces idle for flush_timeout, one batch per source."""
        now = self._clock()
        limit = now - self.flush_timeout
        expired = [k for k, t in self._open.items() if t.touched <= limit]
        for k in [k for k, (_, at) in self._carry.items() if at <= limit]:
            del self._carry[k]
        return self._release(expired, now)

    def flush_all(self) -> list[Batch]:
        self._carry.clear()
        return self._release(list(self._open), self._clock())

    def _release(self, keys: list[tuple[str, str | None, str | None]], now: float) -> list[Batch]:
        outs: dict[str, _Output] = {}
        for key in keys:
            trace = self._open.get(key)
            if trace is not None:
                self._close(key, trace, outs.setdefault(trace.source, _Output()), now)
        return [b for source, out in outs.items() if (b := out.batch(source)) is not None]

    def _feed(self, key: tuple[str, str | None, str | None], e: LogEvent, origin: _Origin, out: _Output,
              now: float) -> None:
        m = e.message
        trace = self._open.get(key)
        if trace is not None:
            nxt = step(trace.state, m)
            if nxt is None:
                self._close(key, trace, out, now)
            else:
                self._extend(key, trace, nxt, e, origin, out, now)
                return
        elif self._carry:
            carried = self._carry.pop(key, None)
            if carried is not None:
                nxt = step(carried[0], m)
                if nxt is not None and not nxt[1]:
                    self._begin(key, nxt[0], e, origin, out, now)
                    return
        state = start_state(m)
        if state is None:
            out.add(e, origin)
        else:
            self._begin(key, state, e, origin, out, now)

    def _begin(self, key: tuple[str, str | None, str | None], state: int, e: LogEvent, origin: _Origin,
               out: _Output, now: float) -> None:
        if len(self._open) >= MAX_OPEN:  # the oldest may be another source's: only its telemetry label is off
            oldest = next(iter(self._open))
            self._close(oldest, self._open[oldest], out, now)
        trace = _Trace(state, key[0], [(e, origin)], len(e.message.encode()), now)
        trace.hold(origin)
        self._open[key] = trace
        if self.max_lines == 1:
            self._close(key, trace, out, now, carry=True)

    def _extend(self, key: tuple[str, str | None, str | None], trace: _Trace, nxt: Step, e: LogEvent,
                origin: _Origin, out: _Output, now: float) -> None:
        size = len(e.message.encode()) + 1
        if trace.nbytes + size > self.max_message_bytes:
            self._close(key, trace, out, now, carry=True)
            if nxt[1]:
                self._feed(key, e, origin, out, now)
            else:
                self._begin(key, nxt[0], e, origin, out, now)
            return
        state, tentative = nxt
        trace.state = state
        trace.nbytes += size
        trace.touched = now
        trace.hold(origin)
        if tentative:
            trace.tentative.append((e, origin))
        else:
            if trace.tentative:
                trace.lines.extend(trace.tentative)
                trace.tentative.clear()
            trace.lines.append((e, origin))
        if len(trace.lines) + len(trace.tentative) >= self.max_lines:
            self._close(key, trace, out, now, carry=True, whole=True)

    def _close(self, key: tuple[str, str | None, str | None], trace: _Trace, out: _Output, now: float,
               carry: bool = False, whole: bool = False) -> None:
        """Emit the joined event into `out`. carry: the trace was cut (max_lines, max bytes) and the
        stream's next line may continue it; whole: its tentative lines belong to it (cut at max_lines),
        otherwise they are taken again on their own."""
        del self._open[key]
        lines = trace.lines
        again: list[Line] = []
        if trace.tentative:
            if whole:
                lines = lines + trace.tentative
            else:
                again = trace.tentative
        first, origin = lines[0]
        if len(lines) > 1:
            first.message = "\n".join(ev.message for ev, _ in lines)
        out.add(first, origin)
        for _, o in lines[1:]:
            out.origins[o] = None
        out.released.extend(trace.holds)
        if carry:
            self._carry[key] = (trace.state, now)
        for ev, o in again:
            self._feed(key, ev, o, out, now)


Downstream = Callable[[Batch], Awaitable[None]]


class Multiline:
    """The pipeline stage: `push` batches in; joined batches go to `downstream`, one call at a time
    and in the order they were formed; a ticker releases traces after flush_timeout."""

    def __init__(self, config: MultilineConfig, downstream: Downstream, *,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.joiner = Joiner(config.max_lines, config.flush_timeout, max_message_bytes, clock)
        self._downstream = downstream
        self._lock = asyncio.Lock()
        self._ticker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._ticker = asyncio.get_running_loop().create_task(self._tick(), name="multiline flush")

    async def stop(self) -> None:
        """Release every held trace downstream (so its source batches can be acknowledged)."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for b in self.joiner.flush_all():
            await self._send(b)

    async def push(self, batch: Batch) -> None:
        out = self.joiner.process(batch)
        if out is not None:
            await self._send(out)

    async def _send(self, batch: Batch) -> None:
        async with self._lock:  # FIFO: batches reach downstream in the order they were formed
            await self._downstream(batch)

    async def _tick(self) -> None:
        interval = max(self.config.flush_timeout / 4, MIN_TICK)
        while True:
            await asyncio.sleep(interval)
            for b in self.joiner.flush_expired():
                await self._send(b)
