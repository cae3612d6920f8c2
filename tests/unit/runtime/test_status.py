"""The monitor -> `hostwatch run` status protocol: round trip, rejects, exit codes, and both real ends."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest

from hostwatch.core.config import EXIT_USAGE
from hostwatch.core.containers import ContainerState
from runtime import status
from runtime.monitor import Monitor
from runtime.run import _follow_status
from runtime.state import StateStore

CID = "c0ffee" * 10 + "c0ff"

EVENTS: list[status.Status] = [
    status.Started(4242),
    status.Exited(0),
    status.Exited(137),
    status.StartFailed(127, "exec /no/such: No such file or directory"),
    status.StartFailed(125, 'two\nlines, "quotes", a tab\t and ünïcødé'),
    status.StartFailed(1, ""),
]


@pytest.mark.parametrize("event", EVENTS, ids=repr)
def test_every_event_survives_the_round_trip_as_one_line(event: status.Status) -> None:
    line = status.encode(event)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert status.decode(line) == event


def test_read_yields_events_in_order_and_unreadable_lines_as_errors() -> None:
    stream = io.BytesIO(status.encode(EVENTS[0]) + b"started 12\n" + status.encode(EVENTS[3]))
    got = list(status.read(stream))
    assert got[0] == EVENTS[0] and got[2] == EVENTS[3]
    assert isinstance(got[1], status.ProtocolError) and "started 12" in str(got[1])


@pytest.mark.parametrize("line", [
    b"exit 3\n",  # the old untyped format
    b"",
    b"[]\n",
    b'{"kind": "paused"}\n',
    b'{"kind": "exit"}\n',
    b'{"kind": "exit", "code": 1, "extra": 2}\n',
    b'{"kind": "exit", "code": "1"}\n',
    b'{"kind": "exit", "code": true}\n',
    b'{"kind": "started", "pid": 1.5}\n',
    b'{"kind": "error", "code": 1, "message": 7}\n',
    b"\xff\xfe\n",
])
def test_anything_else_is_a_protocol_error(line: bytes) -> None:
    with pytest.raises(status.ProtocolError):
        status.decode(line)


def _wait_status_of(action: str) -> int:
    pid = os.fork()
    if pid == 0:
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(int(action))
    return os.waitpid(pid, 0)[1]


@pytest.mark.parametrize(("action", "code"), [("0", 0), ("3", 3), ("255", 255), ("kill", 137)])
def test_exit_code_of_a_real_wait_status(action: str, code: int) -> None:
    assert status.exit_code(_wait_status_of(action)) == code


def _state(store: StateStore) -> ContainerState:
    state = ContainerState(id=CID, name="box", image="host", rootfs=None, command=["true"], hostname="box")
    store.create(state)
    return state


def _through_the_pipe(tmp_path: Path, events: list[status.Status], detach: bool = False) -> int:
    """What the monitor sends on a real pipe, read by the CLI's loop."""
    store = StateStore(tmp_path / "state")
    state = _state(store)
    r, w = os.pipe()
    mon = Monitor(store, None, CID, w, attached=False)  # type: ignore[arg-type]  # no cgroups needed
    for event in events:
        mon._status(event)
    os.close(w)
    with os.fdopen(r, "rb") as stream:
        return _follow_status(stream, state, detach)


def test_monitor_and_cli_agree_on_exit(tmp_path: Path) -> None:
    assert _through_the_pipe(tmp_path, [status.Started(os.getpid()), status.Exited(42)]) == 42


def test_start_failure_reaches_the_user(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _through_the_pipe(tmp_path, [status.StartFailed(126, "exec ./x: Permission denied")])
    assert code == 126
    assert capsys.readouterr().err == "hostwatch: failed to start container box: exec ./x: Permission denied\n"


def test_detached_prints_the_id_once_started(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _through_the_pipe(tmp_path, [status.Started(os.getpid())], detach=True) == 0
    assert capsys.readouterr().out == CID + "\n"


def test_a_monitor_that_dies_silently_is_a_runtime_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _through_the_pipe(tmp_path, []) == EXIT_USAGE
    assert "exited unexpectedly" in capsys.readouterr().err


def test_the_monitor_keeps_running_when_the_cli_is_gone(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    _state(store)
    r, w = os.pipe()
    os.close(r)
    mon = Monitor(store, None, CID, w, attached=False)  # type: ignore[arg-type]
    mon._status(status.Exited(0))  # EPIPE: Python ignores SIGPIPE, and so does the monitor process
    assert mon.status_fd == -1
    os.close(w)
