"""Multiline joining: the rules (table-driven), streams, timeout, max_lines and the ack composition."""

from __future__ import annotations

import asyncio
import random

import pytest

from hostwatch.core.events import DOCKER_JSON, Batch, LogEvent
from logshipper.config import MultilineConfig
from logshipper.transforms.multiline import Joiner, Multiline


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ev(message: str, cid: str = "c1", stream: str = "stdout", n: int = 0) -> LogEvent:
    return LogEvent(time_ns=n, message=message, input_type=DOCKER_JSON, event_id=f"{cid}:{stream}:{n}",
                    stream=stream, container_id=cid)


def messages(batches: list[Batch | None]) -> list[str]:
    return [e.message for b in batches if b is not None for e in b.events]


def run(lines: list[str], max_lines: int = 500, max_bytes: int = 1 << 20) -> list[str]:
    """All lines in one batch, then everything still held flushed."""
    clock = Clock()
    j = Joiner(max_lines, 1.0, max_bytes, clock)
    out = [j.process(Batch([ev(m, n=i) for i, m in enumerate(lines)], None, DOCKER_JSON))]
    out += j.flush_all()
    return messages(out)


JAVA = [
    'Exception in thread "main" java.lang.IllegalStateException: boom',
    "\tat com.example.Foo.bar(Foo.java:10)",
    "\tat com.example.Main.main(Main.java:5)",
    "Caused by: java.lang.NullPointerException: null",
    "\tat com.example.Foo.baz(Foo.java:20)",
    "\t... 1 more",
]
JAVA_SERVLET = [
    "javax.servlet.ServletException: Something bad happened",
    "\tat com.example.myproject.OpenSessionInViewFilter.doFilter(OpenSessionInViewFilter.java:60)",
    "\tat org.mortbay.jetty.Server.handle(Server.java:326)",
    "Caused by: com.example.myproject.MyProjectServletException",
    "\tat com.example.myproject.MyServlet.doPost(MyServlet.java:169)",
    "\t... 27 more",
    "Caused by: org.hibernate.exception.ConstraintViolationException: could not insert",
    "\tat org.hibernate.exception.SQLStateConverter.convert(SQLStateConverter.java:96)",
    "\t... 32 common frames omitted",
    "\tSuppressed: java.io.IOException: close failed",
    "\t\tat com.example.Res.close(Res.java:3)",
]
PYTHON = [
    "Traceback (most recent call last):",
    '  File "/app/main.py", line 3, in <module>',
    "    main()",
    '  File "/app/main.py", line 2, in main',
    '    raise ValueError("bad value")',
    "    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^",
    "ValueError: bad value",
]
PYTHON_CHAINED = [
    "Traceback (most recent call last):",
    '  File "x.py", line 2, in <module>',
    "    1/0",
    "ZeroDivisionError: division by zero",
    "",
    "During handling of the above exception, another exception occurred:",
    "",
    "Traceback (most recent call last):",
    '  File "x.py", line 4, in <module>',
    '    raise KeyError("k")',
    "KeyError: 'k'",
]
GO = [
    "panic: runtime error: index out of range [5] with length 3",
    "",
    "goroutine 1 [running]:",
    "main.main()",
    "\t/app/main.go:8 +0x1d",
]
GO_DEADLOCK = [
    "fatal error: all goroutines are asleep - deadlock!",
    "",
    "goroutine 1 [chan receive]:",
    "main.main()",
    "\t/app/main.go:5 +0x2d",
    "",
    "goroutine 6 [select]:",
    "main.(*Worker).run(0xc000010000)",
    "\t/app/main.go:12 +0x45",
    "created by main.main in goroutine 1",
    "\t/app/main.go:4 +0x25",
]
GO_SIGNAL = [
    "panic: runtime error: invalid memory address or nil pointer dereference",
    "[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x48f4d6]",
    "",
    "goroutine 1 [running]:",
    "main.main()",
    "\t/app/main.go:9 +0x16",
]


def joined(lines: list[str]) -> str:
    return "\n".join(lines)


CASES = [
    ("plain lines pass through", ["a", "b", "c"], ["a", "b", "c"]),
    ("java trace with causes", ["before", *JAVA, "after"], ["before", joined(JAVA), "after"]),
    ("java servlet trace, suppressed, frames omitted", [*JAVA_SERVLET, "next"], [joined(JAVA_SERVLET), "next"]),
    ("java: a blank after the exception line joins when frames follow",
     ["java.lang.RuntimeException: x", "", "\tat a.B.c(B.java:1)", "n"],
     ["java.lang.RuntimeException: x\n\n\tat a.B.c(B.java:1)", "n"]),
    ("java: a blank not followed by frames stays its own line",
     ["java.lang.RuntimeException: x", "", "plain"], ["java.lang.RuntimeException: x", "", "plain"]),
    ("java: a blank after frames ends the trace",
     ["java.lang.RuntimeException: x", "\tat a.B.c(B.java:1)", "", "n"],
     ["java.lang.RuntimeException: x\n\tat a.B.c(B.java:1)", "", "n"]),
    ("java: nested exception",
     ["org.x.BeanException: Error creating bean", "\tat a.B.c(B.java:1)", "nested exception is: ",
      "java.lang.IllegalArgumentException: bad", "\tat d.E.f(E.java:2)", "done"],
     ["org.x.BeanException: Error creating bean\n\tat a.B.c(B.java:1)\nnested exception is: \n"
      "java.lang.IllegalArgumentException: bad\n\tat d.E.f(E.java:2)", "done"]),
    ("an exception-looking line with nothing after it is one event", ["Error: x", "ok"], ["Error: x", "ok"]),
    ("python traceback", ["start", *PYTHON, "INFO next"], ["start", joined(PYTHON), "INFO next"]),
    ("python chained traceback", [*PYTHON_CHAINED, "done"], [joined(PYTHON_CHAINED), "done"]),
    ("python: a blank after the final line stays its own line",
     ["Traceback (most recent call last):", '  File "x", line 1, in <module>', "KeyError: 1", "", "next"],
     ['Traceback (most recent call last):\n  File "x", line 1, in <module>\nKeyError: 1', "", "next"]),
    ("python: exception without message", ["Traceback (most recent call last):", '  File "x", line 1, in f',
                                           "KeyboardInterrupt", "x"],
     ['Traceback (most recent call last):\n  File "x", line 1, in f\nKeyboardInterrupt', "x"]),
    ("python: a traceback cut short by an ordinary line",
     ["Traceback (most recent call last):", '  File "x", line 1, in f', "[INFO] unrelated: log line"],
     ['Traceback (most recent call last):\n  File "x", line 1, in f', "[INFO] unrelated: log line"]),
    ("go panic", [*GO, "exit status 2"], [joined(GO), "exit status 2"]),
    ("go deadlock with two goroutines", [*GO_DEADLOCK, "", "next"], [joined(GO_DEADLOCK), "", "next"]),
    ("go panic with signal, flushed at the end", GO_SIGNAL, [joined(GO_SIGNAL)]),
    ("traces back to back", [*PYTHON, *JAVA, *GO], [joined(PYTHON), joined(JAVA), joined(GO)]),
]


@pytest.mark.parametrize(("lines", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rules(lines: list[str], expected: list[str]) -> None:
    assert run(lines) == expected


def test_max_lines_cuts_a_long_trace_into_events_that_carry_on() -> None:
    frames = [f"\tat a.B.m{i}(B.java:{i})" for i in range(7)]
    lines = ["java.lang.RuntimeException: deep", *frames, "next"]
    out = run(lines, max_lines=3)
    assert out == [joined(lines[0:3]), joined(lines[3:6]), joined(lines[6:8]), "next"]


def test_max_bytes_cuts_a_trace() -> None:
    frames = [f"\tat a.B.m{i}(B.java:{i})" for i in range(6)]
    lines = ["java.lang.RuntimeException: big", *frames]
    limit = len(joined(lines[:3]).encode())  # room for three lines
    out = run(lines, max_bytes=limit)
    assert out == [joined(lines[0:3]), joined(lines[3:6]), lines[6]]
    assert all(len(m.encode()) <= limit for m in out)


def test_joined_event_keeps_the_first_lines_identity() -> None:
    j = Joiner(500, 1.0, clock=Clock())
    events = [ev(m, n=i) for i, m in enumerate([*PYTHON, "x"])]
    out = j.process(Batch(events, None, DOCKER_JSON))
    assert out is not None
    first = out.events[0]
    assert (first.event_id, first.time_ns, first.message) == ("c1:stdout:0", 0, joined(PYTHON))
    assert out.events[1].event_id == f"c1:stdout:{len(PYTHON)}"


def test_interleaved_streams_are_joined_separately_and_keep_their_order() -> None:
    a = [*PYTHON, "a-next"]
    b = [*GO, "b-next"]
    c = ["c1", "c2", *JAVA, "c3"]  # same container as b, other stream
    streams = [("A", "stdout", a), ("B", "stderr", b), ("B", "stdout", c)]
    rng = random.Random(7)
    cursors = [0, 0, 0]
    order: list[LogEvent] = []
    while any(cursors[i] < len(s[2]) for i, s in enumerate(streams)):
        i = rng.choice([k for k in range(3) if cursors[k] < len(streams[k][2])])
        cid, stream, lines = streams[i]
        order.append(ev(lines[cursors[i]], cid, stream, n=len(order)))
        cursors[i] += 1
    j = Joiner(500, 1.0, clock=Clock())
    outs: list[Batch | None] = []
    for k in range(0, len(order), 3):  # batches of three
        outs.append(j.process(Batch(order[k:k + 3], None, DOCKER_JSON)))
    outs += j.flush_all()
    got = [e for b in outs if b is not None for e in b.events]

    def of(cid: str, stream: str) -> list[str]:
        return [e.message for e in got if (e.container_id, e.stream) == (cid, stream)]

    assert of("A", "stdout") == [joined(PYTHON), "a-next"]
    assert of("B", "stderr") == [joined(GO), "b-next"]
    assert of("B", "stdout") == ["c1", "c2", joined(JAVA), "c3"]


class Acks:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, name: str) -> Batch:
        return Batch([], lambda: self.calls.append(name), DOCKER_JSON)


def batch_of(acks: Acks, name: str, lines: list[str], start: int = 0) -> Batch:
    b = acks(name)
    b.events = [ev(m, n=start + i) for i, m in enumerate(lines)]
    return b


def test_a_batch_that_began_a_trace_is_acked_only_after_the_joined_event() -> None:
    acks = Acks()
    j = Joiner(500, 1.0, clock=Clock())
    out1 = j.process(batch_of(acks, "b1", ["a", PYTHON[0]]))
    out2 = j.process(batch_of(acks, "b2", PYTHON[1:], 10))
    out3 = j.process(batch_of(acks, "b3", ["b"], 20))
    assert out1 is not None and out2 is None and out3 is not None
    assert messages([out1]) == ["a"] and messages([out3]) == [joined(PYTHON), "b"]
    assert out1.ack is not None and out3.ack is not None
    out1.ack()
    assert acks.calls == []  # b1's traceback line is still on its way
    out3.ack()
    assert acks.calls == ["b1", "b2", "b3"]


def test_acks_wait_for_every_output_whatever_order_they_complete_in() -> None:
    acks = Acks()
    j = Joiner(500, 1.0, clock=Clock())
    out1 = j.process(batch_of(acks, "b1", ["a", PYTHON[0]]))
    out2 = j.process(batch_of(acks, "b2", [*PYTHON[1:], "b"], 10))
    assert out1 is not None and out2 is not None and out1.ack and out2.ack
    out2.ack()
    assert acks.calls == ["b2"]  # b1 still has "a" in flight
    out1.ack()
    assert acks.calls == ["b2", "b1"]


def test_flush_timeout_releases_a_held_trace_and_its_acks() -> None:
    clock = Clock()
    acks = Acks()
    j = Joiner(500, 2.0, clock=clock)
    assert j.process(batch_of(acks, "b1", GO_SIGNAL)) is None
    clock.now += 1.9
    assert j.flush_expired() == []
    assert j.process(batch_of(acks, "b2", [], 0)) is None  # an empty batch is acked at once
    assert acks.calls == ["b2"]
    clock.now += 2.0
    [flushed] = j.flush_expired()
    assert messages([flushed]) == [joined(GO_SIGNAL)]
    assert j.held == 0 and acks.calls == ["b2"]
    assert flushed.ack is not None
    flushed.ack()
    assert acks.calls == ["b2", "b1"]


def test_the_timeout_counts_from_the_last_line() -> None:
    clock = Clock()
    j = Joiner(500, 2.0, clock=clock)
    j.process(Batch([ev(JAVA[0])], None, DOCKER_JSON))
    clock.now += 1.5
    j.process(Batch([ev(JAVA[1])], None, DOCKER_JSON))
    clock.now += 1.5
    assert j.flush_expired() == []
    clock.now += 0.5
    assert messages(list(j.flush_expired())) == [joined(JAVA[:2])]


VOCAB = [
    lambda n: f"msg {n}", lambda n: f"java.lang.IllegalStateException: e{n}", lambda n: f"\tat a.B.m(B.java:{n})",
    lambda n: f"\t... {n} more", lambda n: f"Caused by: x.Y: {n}", lambda n: "", lambda n: "  ",
    lambda n: "Traceback (most recent call last):", lambda n: f'  File "f.py", line {n}, in g',
    lambda n: f"ValueError: {n}", lambda n: "During handling of the above exception, another exception occurred:",
    lambda n: f"panic: p{n}", lambda n: f"goroutine {n} [running]:", lambda n: f"main.f{n}()",
    lambda n: f"\t/a.go:{n} +0x1", lambda n: "[signal SIGSEGV: segmentation violation]",
]


def test_random_batches_lose_nothing_and_ack_every_batch_once_after_its_events() -> None:
    rng = random.Random(1234)
    for trial in range(60):
        random_trial(rng, trial)


def random_trial(rng: random.Random, trial: int) -> None:
    """Random lines of two containers in random batches, random flushes, acks in random order."""
    clock = Clock()
    j = Joiner(rng.choice([1, 2, 3, 50]), 1.0, rng.choice([40, 200, 1 << 20]), clock)
    sent: dict[str, list[tuple[str, int]]] = {}  # per container: (line, input batch)
    got: dict[str, list[str]] = {}
    outs: list[tuple[Batch, set[int]]] = []
    acked: set[int] = set()
    fired: dict[int, int] = {}

    def ack_for(i: int) -> None:
        fired[i] = fired.get(i, 0) + 1
        # every output batch that carries one of batch i's lines must be acknowledged already
        assert all(k in acked for k, (_, origins) in enumerate(outs) if i in origins)

    def take(b: Batch | None) -> None:
        if b is None:
            return
        origins = set()
        for e in b.events:
            cid = e.container_id or ""
            for line in e.message.split("\n"):
                pos = len(got.setdefault(cid, []))
                got[cid].append(line)
                origins.add(sent[cid][pos][1] if pos < len(sent[cid]) else -1)
        outs.append((b, origins))

    def ack_some(k_list: list[int]) -> None:
        for k in k_list:
            acked.add(k)
            ack = outs[k][0].ack
            assert ack is not None
            ack()

    n_batches = rng.randint(1, 30)
    for i in range(n_batches):
        events = []
        for _ in range(rng.randint(0, 8)):
            cid = rng.choice(["x", "y"])
            line = rng.choice(VOCAB)(rng.randint(0, 99))
            sent.setdefault(cid, []).append((line, i))
            events.append(ev(line, cid))
        take(j.process(Batch(events, (lambda i=i: ack_for(i)), DOCKER_JSON)))
        if rng.random() < 0.3:
            clock.now += rng.choice([0.5, 1.0, 3.0])
            for b in j.flush_expired():
                take(b)
        pending = [k for k in range(len(outs)) if k not in acked]
        ack_some(rng.sample(pending, rng.randint(0, len(pending))))
    for b in j.flush_all():
        take(b)
    ack_some(rng.sample([k for k in range(len(outs)) if k not in acked], len(outs) - len(acked)))
    assert got == {cid: [line for line, _ in lines] for cid, lines in sent.items()}, f"trial {trial}"
    assert fired == {i: 1 for i in range(n_batches)}, f"trial {trial}"
    assert j.held == 0


async def _collect_until(out: list[Batch], n: int, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while sum(len(b.events) for b in out) < n and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)


def test_stage_flushes_on_its_ticker_and_on_stop() -> None:
    async def main() -> tuple[list[str], list[str], list[str]]:
        out: list[Batch] = []

        async def downstream(b: Batch) -> None:
            out.append(b)

        stage = Multiline(MultilineConfig(enabled=True, flush_timeout=0.05), downstream)
        await stage.start()
        await stage.push(Batch([ev(m, n=i) for i, m in enumerate(GO_SIGNAL)], None, DOCKER_JSON))
        await _collect_until(out, 1)
        after_tick = messages(list(out))
        stage.joiner.flush_timeout = 3600.0  # from here on only stop() releases
        await stage.push(Batch([ev(m, n=i) for i, m in enumerate(["x", *PYTHON])], None, DOCKER_JSON))
        before_stop = messages(list(out))
        await stage.stop()
        return after_tick, before_stop, messages(list(out))

    after_tick, before_stop, final = asyncio.run(main())
    assert after_tick == [joined(GO_SIGNAL)]
    assert before_stop == [joined(GO_SIGNAL), "x"]
    assert final == [joined(GO_SIGNAL), "x", joined(PYTHON)]


def test_stage_keeps_downstream_calls_in_order_while_downstream_blocks() -> None:
    async def main() -> list[str]:
        out: list[str] = []
        gate = asyncio.Event()

        async def downstream(b: Batch) -> None:
            await gate.wait()
            out.extend(e.message for e in b.events)

        stage = Multiline(MultilineConfig(enabled=True, flush_timeout=3600.0), downstream)
        await stage.start()
        pushes = [asyncio.create_task(stage.push(Batch([ev(f"line {i}")], None, DOCKER_JSON))) for i in range(20)]
        await asyncio.sleep(0.01)
        gate.set()
        await asyncio.gather(*pushes)
        await stage.stop()
        return out

    assert asyncio.run(main()) == [f"line {i}" for i in range(20)]
