import subprocess
from pathlib import Path

from hostwatch.core.containers import ContainerState
from runtime import state as state_mod
from runtime.state import UNKNOWN_EXIT, StateStore


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _running(store: StateStore, cid: str, **kw: object) -> None:
    st = ContainerState(id=cid, name=cid[:4], image="host", rootfs=None, command=["sleep"], hostname="h",
                        status="running", started="2026-01-01T00:00:00Z", **kw)  # type: ignore[arg-type]
    store.dir(cid).mkdir(parents=True)
    store.save(st)


def test_running_state_without_monitor_or_pid1_becomes_exited(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    _running(store, "a" * 64, monitor_pid=_dead_pid(), pid=_dead_pid(), boot_id=state_mod.boot_id())
    [st] = store.list()
    assert (st.status, st.exit_code) == ("exited", UNKNOWN_EXIT)
    assert "monitor is gone" in st.error and st.finished
    assert store.load("a" * 64).status == "exited"  # recorded, not just shown


def test_live_monitor_or_live_pid1_keeps_it_running(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with subprocess.Popen(["sleep", "30"]) as alive:
        try:
            _running(store, "b" * 64, monitor_pid=alive.pid, pid=_dead_pid(), boot_id=state_mod.boot_id())
            _running(store, "c" * 64, monitor_pid=_dead_pid(), pid=alive.pid, boot_id=state_mod.boot_id())
            assert [s.status for s in store.list()] == ["running", "running"]
        finally:
            alive.kill()


def test_a_state_from_an_earlier_boot_is_stale(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    with subprocess.Popen(["sleep", "30"]) as reused:  # a pid number reused after the reboot
        try:
            _running(store, "d" * 64, monitor_pid=reused.pid, pid=reused.pid, boot_id="an-earlier-boot")
            assert store.resolve("dddd").status == "exited"
        finally:
            reused.kill()
