"""The per-container monitor (our conmon/shim).

It outlives the CLI call: it becomes the parent of the container's PID 1, holds its stdout/stderr
pipes, feeds the log driver, reaps the exit status and records it (exit code, OOM kill) in the state.
"""

from __future__ import annotations

import os
import selectors
import signal
import time
from dataclasses import dataclass

from hostwatch.core.containers import ContainerState
from hostwatch.core.timefmt import rfc3339_nano
from runtime import logdrivers, network, status
from runtime import namespaces as ns
from runtime.cgroups import CgroupError, Cgroups
from runtime.confine import Confinement
from runtime.removal import remove_container
from runtime.state import StateStore, boot_id

EXEC_FAILED_NOT_FOUND = 127
EXEC_FAILED_NOT_EXECUTABLE = 126
SIGKILLED = status.SIGNAL_EXIT_BASE + signal.SIGKILL  # what the OOM killer leaves


@dataclass
class Pipes:
    out_r: int
    out_w: int
    err_r: int
    err_w: int
    ready_r: int  # child -> monitor: cgroups joined, namespaces unshared
    ready_w: int
    go_r: int  # monitor -> child: network plumbed
    go_w: int
    exec_r: int  # child -> monitor: exec error text; EOF alone means exec succeeded
    exec_w: int

    @classmethod
    def open(cls) -> Pipes:
        fds: list[int] = []
        for _ in range(5):
            fds.extend(os.pipe())
        return cls(*fds)


def _child(state: ContainerState, cgroups: Cgroups, p: Pipes, confinement: Confinement) -> None:
    """Runs as PID 1 of the new pid namespace; never returns."""
    code = EXEC_FAILED_NOT_FOUND
    try:
        os.setsid()
        for fd in (p.out_r, p.err_r, p.ready_r, p.go_w, p.exec_r):
            os.close(fd)
        os.set_inheritable(p.exec_w, False)
        cgroups.join(state.cgroup)  # before anything it does is counted, and from inside: see join
        ns.unshare(ns.container_flags(state.network.get("mode") == "host"))
        os.write(p.ready_w, b"r")
        # While the monitor plumbs the bridge, import and set up the mounts: nothing in `prepare`
        # needs the bridge's interface (loopback only), and importing here keeps it off the CLI's path.
        from runtime import init

        user = init.prepare(state)
        env = init.container_env(state, user.home)
        if os.read(p.go_r, 1) != b"g":
            os._exit(1)
        devnull = os.open("/dev/null", os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(p.out_w, 1)
        os.dup2(p.err_w, 2)
        os.closerange(3, p.exec_w)
        os.closerange(p.exec_w + 1, 65536)
        confinement.apply(user)
        try:
            os.execvpe(state.command[0], state.command, env)
        except PermissionError as e:
            code = EXEC_FAILED_NOT_EXECUTABLE
            msg = f"exec {state.command[0]}: {e.strerror}"
        except OSError as e:
            msg = f"exec {state.command[0]}: {e.strerror or e}"
    except BaseException as e:  # noqa: BLE001 - anything here must reach the CLI as text
        msg = f"container init: {e}"
    try:
        os.write(p.exec_w, msg.encode(errors="replace")[:4000])
    finally:
        os._exit(code)


class Monitor:
    def __init__(self, store: StateStore, cgroups: Cgroups, cid: str, status_fd: int, attached: bool) -> None:
        self.store = store
        self.cgroups = cgroups
        self.state = store.load(cid)
        self.status_fd = status_fd
        self.attached = attached

    def _status(self, event: status.Status) -> None:
        if self.status_fd < 0:
            return
        try:
            status.write(self.status_fd, event)
        except OSError:
            self.status_fd = -1  # the CLI went away (Ctrl-C, detached): keep running without it

    def _save(self) -> None:
        try:
            self.store.save(self.state)
        except FileNotFoundError:
            pass  # `rm -f` removed the container while it ran

    def run(self) -> int:
        try:
            confinement = Confinement.of(self.state)
        except Exception as e:  # noqa: BLE001 - an unusable profile ends the start, as one line
            return self._not_started(f"seccomp: {e}")
        p = Pipes.open()
        pid = self._fork_pid1(p, confinement)
        for fd in (p.out_w, p.err_w, p.ready_w, p.go_r, p.exec_w):
            os.close(fd)
        error = self._start(pid, p)
        if error:
            return self._failed_start(pid, error)
        return self._supervise(pid, p)

    def _fork_pid1(self, p: Pipes, confinement: Confinement) -> int:
        """Fork the container's PID 1 through a short-lived intermediate.

        Only the intermediate unshares the pid namespace: a process that did so can no longer start
        threads, and the monitor needs them for the log drivers. As a child subreaper, the monitor
        inherits PID 1 when the intermediate exits, and reaps it.
        """
        ns.set_child_subreaper()
        pid_r, pid_w = os.pipe()
        mid = os.fork()
        if mid == 0:
            try:
                os.close(pid_r)
                ns.unshare(ns.CLONE_NEWPID)
                pid = os.fork()
                if pid == 0:
                    os.close(pid_w)
                    _child(self.state, self.cgroups, p, confinement)
                os.write(pid_w, str(pid).encode())
            finally:
                os._exit(0)
        os.close(pid_w)
        os.waitpid(mid, 0)
        data = os.read(pid_r, 32)
        os.close(pid_r)
        if not data:
            raise OSError("could not fork the container's first process")
        return int(data)

    def _start(self, pid: int, p: Pipes) -> str:
        if os.read(p.ready_r, 1) != b"r":
            return os.read(p.exec_r, 4000).decode(errors="replace") or "container init died"
        try:
            if self.state.network.get("mode") == "bridge":
                network.attach_bridge(self.state.id, pid, self.state.network["ip"])
        except Exception as e:  # noqa: BLE001
            os.kill(pid, signal.SIGKILL)  # the init may have failed first (in prepare): its reason wins
            return os.read(p.exec_r, 4000).decode(errors="replace") or str(e)
        self.state.pid = pid
        try:
            os.write(p.go_w, b"g")
        except BrokenPipeError:
            pass  # the init failed in prepare and exited; its reason is on exec_r
        os.close(p.go_w)
        return os.read(p.exec_r, 4000).decode(errors="replace")

    def _failed_start(self, pid: int, error: str) -> int:
        _, wait_status = os.waitpid(pid, 0)
        return self._not_started(error, status.exit_code(wait_status) or EXEC_FAILED_NOT_FOUND)

    def _not_started(self, error: str, code: int = EXEC_FAILED_NOT_FOUND) -> int:
        self.state.status = "exited"
        self.state.exit_code = code
        self.state.error = error.strip()
        self.state.finished = rfc3339_nano()
        self.state.pid = None
        self._save()
        self._status(status.StartFailed(code, self.state.error))
        self._cleanup()
        return code

    def _supervise(self, pid: int, p: Pipes) -> int:
        st = self.state
        st.status = "running"
        st.started = rfc3339_nano()
        st.boot_id = boot_id()
        self._save()
        self._status(status.Started(pid))
        driver = logdrivers.create(st.log_driver, logdrivers.LogInfo(
            container_id=st.id, container_name=st.name, image_name=st.image, image_id="",
            command=st.command, created=st.created, labels=st.labels, env=st.env,
            log_path=st.log_path, opts=st.log_opts, cache_path=st.log_cache_path,
        ))
        self._pump(p, driver)
        _, wait_status = os.waitpid(pid, 0)
        driver.close()
        code = status.exit_code(wait_status)
        st.status = "exited"
        st.exit_code = code
        st.finished = rfc3339_nano()
        st.oom_killed = code == SIGKILLED and self._oom_killed()
        st.log_dropped = driver.dropped
        st.pid = None
        self._save()
        self._status(status.Exited(code))
        self._cleanup()
        return code

    def _oom_killed(self) -> bool:
        try:
            return self.cgroups.oom_killed(self.state.cgroup)
        except (OSError, CgroupError):
            return False

    def _pump(self, p: Pipes, driver: logdrivers.LogDriver) -> None:
        """Copy the container's output into the log driver (and the attached terminal) until EOF."""
        sel = selectors.DefaultSelector()
        copiers = {
            p.out_r: (logdrivers.Copier("stdout", driver.log), 1),
            p.err_r: (logdrivers.Copier("stderr", driver.log), 2),
        }
        for fd in copiers:
            sel.register(fd, selectors.EVENT_READ)
        while copiers:
            for key, _ in sel.select():
                fd = int(key.fd)
                data = os.read(fd, 65536)
                copier, tty_fd = copiers[fd]
                if not data:
                    copier.flush()
                    sel.unregister(fd)
                    os.close(fd)
                    del copiers[fd]
                    continue
                copier.feed(data)
                if self.attached:
                    try:
                        _write_all(tty_fd, data)
                    except OSError:
                        self.attached = False
        sel.close()

    def _cleanup(self) -> None:
        if self.status_fd >= 0:
            os.close(self.status_fd)
            self.status_fd = -1
        if self.state.network.get("mode") == "bridge":  # like Docker, a stopped container frees its address
            network.release_ip(self.state.network.get("ip", ""), self.store.dir(self.state.id))
        if self.state.auto_remove:
            remove_container(self.store, self.cgroups, self.state)


def _write_all(fd: int, data: bytes) -> None:
    """os.write may take only part of the data (a terminal, a signal mid-write)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def spawn(store: StateStore, cgroups: Cgroups, cid: str, status_fd: int, attached: bool) -> int:
    """Fork the monitor, detached from the CLI (own session, reparented to init); return its pid."""
    pid_r, pid_w = os.pipe()
    first = os.fork()
    if first == 0:
        os.close(pid_r)
        try:
            os.setsid()
            second = os.fork()
            if second == 0:
                _monitor_main(store, cgroups, cid, status_fd, attached, pid_w)
            os.write(pid_w, str(second).encode())
        finally:
            os._exit(0)
    os.close(pid_w)
    os.waitpid(first, 0)
    monitor_pid = int(os.read(pid_r, 32) or b"0")
    os.close(pid_r)
    return monitor_pid


def _monitor_main(store: StateStore, cgroups: Cgroups, cid: str, status_fd: int, attached: bool,
                  pid_w: int) -> None:
    code = 1
    try:
        os.close(pid_w)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        if not attached:
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
        mon = Monitor(store, cgroups, cid, status_fd, attached)
        mon.state.monitor_pid = os.getpid()
        code = mon.run()
    except BaseException:  # noqa: BLE001
        try:
            with open(store.dir(cid) / "monitor.err", "a") as f:
                import traceback  # only on this path: ~1.5 ms of every start otherwise

                f.write(time.strftime("%FT%T ") + traceback.format_exc())
        except OSError:
            pass
    finally:
        os._exit(code & 0xFF)
