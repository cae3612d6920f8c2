"""The v1/v2 readers and procfs parsers against fixture trees written from the kernel's formats."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.readers import UnsupportedHierarchy, V1Reader, V2Reader, fsread, open_reader, procfs
from exporter.readers.tree import parse_pressure, walk_tree
from hostwatch.core.cgroupfs import weight_to_shares

from exporter_testdata import HW2_ID, HW_ID


def test_open_reader_picks_the_version(fixtures: Path, tmp_path: Path) -> None:
    assert isinstance(open_reader(str(fixtures / "v1")), V1Reader)
    assert isinstance(open_reader(str(fixtures / "v2")), V2Reader)
    hybrid = open_reader(str(fixtures / "hybrid"))
    assert isinstance(hybrid, V1Reader) and hybrid.has_pressure()
    assert not open_reader(str(fixtures / "v1")).has_pressure()
    with pytest.raises(UnsupportedHierarchy):
        open_reader(str(tmp_path))


def test_v1_comounted_controllers(fixtures: Path) -> None:
    dirs = V1Reader.controller_dirs(str(fixtures / "v1"))
    assert dirs["cpu"].endswith("/cpu") and dirs["cpuacct"].endswith("/cpuacct")
    assert dirs["memory"].endswith("/memory")


def test_v1_walk_finds_every_cgroup_root_first(fixtures: Path) -> None:
    cgs = list(open_reader(str(fixtures / "v1")).walk())
    assert cgs == ["/", "/hostwatch", f"/hostwatch/{HW_ID}", "/system.slice", "/system.slice/cron.service"]


def test_v1_values(fixtures: Path) -> None:
    r = open_reader(str(fixtures / "v1"))
    cg = f"/hostwatch/{HW_ID}"
    cpu = r.cpu(cg, per_cpu=True)
    assert cpu.per_cpu_ns == [1_500_000_000, 2_500_000_000] and cpu.usage_ns == 4_000_000_000
    assert cpu.user_ns == 2_500_000_000 and cpu.system_ns == 1_000_000_000  # USER_HZ ticks
    assert (cpu.periods, cpu.throttled_periods, cpu.throttled_ns) == (100, 20, 1_500_000_000)
    assert r.cpu(cg, per_cpu=False).per_cpu_ns is None
    mem = r.memory(cg)
    assert mem.usage == 104857600 and mem.working_set == 104857600 - 4194304
    assert (mem.rss, mem.cache, mem.mapped_file, mem.swap) == (52428800, 20971520, 1048576, 0)
    assert (mem.max_usage, mem.failcnt) == (125829120, 7)
    assert (mem.pgfault, mem.pgmajfault, mem.hierarchy_pgfault, mem.hierarchy_pgmajfault) == (1000, 3, 1200, 4)
    spec = r.spec(cg)
    assert (spec.cpu_period, spec.cpu_quota, spec.cpu_shares) == (100000, 50000, 512)
    assert (spec.memory_limit, spec.memory_swap_limit, spec.memory_reservation) == (268435456, 536870912, 134217728)
    io = r.io(cg)
    assert io.service_bytes["254:0"] == {"Read": 4096, "Write": 8192, "Sync": 12288, "Async": 0, "Discard": 0,
                                         "Total": 12288}
    assert (io.serviced["254:0"]["Read"], io.serviced["254:0"]["Write"]) == (1, 2)
    assert io.service_bytes["7:3"]["Read"] == 4096 and io.totals() == (8192, 8192)
    assert io.merged == {} and io.sectors == {}  # a kernel without CFQ's tables (v1 fixture)
    pids = r.pids(cg)
    assert (pids.current, pids.limit) == (3, 100)
    assert r.procs(cg) == [4242, 4243]
    assert r.oom_kills(cg) == 2


def test_v1_unlimited_and_missing(fixtures: Path) -> None:
    r = open_reader(str(fixtures / "v1"))
    assert r.spec("/hostwatch").cpu_quota is None  # -1: unlimited
    assert r.pids("/hostwatch").limit is None  # "max"
    assert r.pids("/").current is None  # the root pids cgroup has no pids.current
    old = "/system.slice/cron.service"
    assert r.oom_kills(old) is None  # kernel < 4.13: no oom_kill line
    assert r.spec(old).memory_swap_limit is None  # swapaccount=0
    with pytest.raises(FileNotFoundError):
        r.io(old)  # no blkio directory
    with pytest.raises(FileNotFoundError):
        r.memory("/vanished")


def test_v2_values(fixtures: Path) -> None:
    r = open_reader(str(fixtures / "v2"))
    cg = f"/hostwatch/{HW2_ID}"
    cpu = r.cpu(cg, per_cpu=True)
    assert cpu.per_cpu_ns is None and cpu.usage_ns == 3_000_000_000
    assert (cpu.user_ns, cpu.system_ns) == (2_000_000_000, 1_000_000_000)
    assert (cpu.periods, cpu.throttled_periods, cpu.throttled_ns) == (50, 5, 250_000_000)
    mem = r.memory(cg)
    assert mem.usage == 52428800 and mem.working_set == 52428800 - 2097152
    assert (mem.rss, mem.cache, mem.mapped_file, mem.swap, mem.max_usage) == (31457280, 10485760, 524288, 0, 62914560)
    assert mem.failcnt == 3 == mem.events["max"]  # v2 has no failcnt file: memory.events max counts the same
    assert mem.events["oom_kill"] == 1
    assert (mem.kernel, mem.pgscan, mem.pgsteal, mem.refault_file, mem.refault_anon) == (1048576, 120, 100, 17, 3)
    assert (mem.file_dirty, mem.file_writeback, mem.active_file) == (8192, 4096, 10485760 - 2097152)
    spec = r.spec(cg)
    assert (spec.cpu_period, spec.cpu_quota, spec.cpu_shares) == (100000, 50000, 2597)
    assert (spec.memory_limit, spec.memory_swap_limit, spec.memory_reservation) == (134217728, None, 0)
    io = r.io(cg)
    assert io.service_bytes["254:0"]["Write"] == 8192 and io.cost_usage["254:0"] == {"Count": 1500}
    assert io.service_bytes["8:99"] == {"Read": 512, "Write": 0}
    assert (r.pids(cg).current, r.pids(cg).limit) == (2, None)
    psi = r.pressure(cg)
    assert (psi["cpu"].some_us, psi["cpu"].full_us) == (1000000, 400000)
    assert r.oom_kills(cg) == 1


def test_v2_root_and_missing(fixtures: Path) -> None:
    r = open_reader(str(fixtures / "v2"), str(fixtures / "proc"))
    root = r.memory("/")
    # no memory.current on the root: MemTotal - MemFree from the fixture's meminfo, as cAdvisor does
    assert root.usage == (25165824 - 20000000) * 1024 and root.rss == 1073741824
    assert root.working_set == root.usage - 268435456  # minus the root memory.stat's inactive_file
    assert root.swap == 0
    assert r.spec("/").cpu_quota is None and r.oom_kills("/") is None
    old = "/system.slice/old-kernel.service"
    assert r.memory(old).max_usage is None  # no memory.peak before 5.19: optional
    assert r.cpu(old, per_cpu=True).periods is None  # cpu controller not enabled
    with pytest.raises(FileNotFoundError):
        r.spec(old)
    with pytest.raises(FileNotFoundError):
        r.pids(old)


def test_weight_to_shares_matches_runc() -> None:
    assert weight_to_shares(1) == 2
    assert weight_to_shares(100) == 2597
    assert weight_to_shares(10000) == 262144


def test_parse_pressure_without_full_line() -> None:
    got = parse_pressure(b"some avg10=1.00 avg60=0.50 avg300=0.10 total=123456\n")  # cpu before 5.13
    assert (got.some_us, got.full_us) == (123456, None)


def test_net_dev_skips_lo_and_veth(fixtures: Path) -> None:
    ifaces = procfs.net_dev(str(fixtures / "proc"), 4242)
    assert list(ifaces) == ["eth0"]
    eth = ifaces["eth0"]
    assert (eth.rx_bytes, eth.rx_packets, eth.rx_errors, eth.rx_dropped) == (1000, 10, 1, 2)
    assert (eth.tx_bytes, eth.tx_packets, eth.tx_errors, eth.tx_dropped) == (2000, 20, 0, 0)


def test_namespaces_fds_meminfo(fixtures: Path) -> None:
    proc = str(fixtures / "proc")
    ns = procfs.namespaces(proc, 4242)
    assert ns["net"] == 4026532500 and ns["user"] == 4026531837 and len(ns) == 7
    assert procfs.fd_counts(proc, 4243) == (3, 2)
    assert procfs.meminfo(proc)["MemTotal"] == 25165824 * 1024
    assert procfs.cpu_count(proc) == 2 and procfs.boot_time(proc) == 1767225600
    assert procfs.host_pid(proc) == "1"


def test_walk_order_and_leaves_are_not_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for d in ("a", "b/x", "b/y/z", "c"):
        (tmp_path / d).mkdir(parents=True)
        (tmp_path / d / "cgroup.procs").write_text("")
    opened: list[str] = []
    real_scandir = fsread.scandir

    def recording_scandir(path: str) -> Iterator[os.DirEntry[str]]:
        opened.append(path[len(str(tmp_path)):])
        return real_scandir(path)

    monkeypatch.setattr(fsread, "scandir", recording_scandir)
    assert list(walk_tree(str(tmp_path))) == ["/", "/a", "/b", "/b/x", "/b/y", "/b/y/z", "/c"]
    assert os.stat(tmp_path / "a").st_nlink == 2, "this test needs a filesystem that counts subdirectories"
    assert opened == ["", "/b", "/b/y"]


def test_task_state_after_the_last_parenthesis() -> None:
    assert procfs.task_state(b"42 (a) b)) R 1 2 3\n") == procfs.TASK_STATES.index("running")
    assert procfs.task_state(b"7 (kworker/0:1) I 2 0 0\n") is None  # idle kernel threads are not counted
    assert procfs.task_state(b"garbage") is None


def test_socket_tables(fixtures: Path) -> None:
    proc = fixtures / "proc" / "4242" / "net"
    tcp = dict(zip(procfs.TCP_STATES, procfs.parse_tcp((proc / "tcp").read_bytes()), strict=True))
    assert (tcp["listen"], tcp["established"], tcp["timewait"], tcp["close"]) == (1, 2, 1, 0)
    assert procfs.parse_udp((proc / "udp").read_bytes()) == [1, 2, 256, 0]  # rx_queue is after the colon
    assert procfs.parse_udp((proc / "udp6").read_bytes()) == [0, 0, 0, 0]


def test_diskstats_vmstat_os_release(fixtures: Path) -> None:
    stats = procfs.parse_diskstats((fixtures / "proc" / "diskstats").read_bytes())
    assert stats["254:0"][:2] == (15000, 300) and stats["254:16"][procfs.DISKSTAT_FIELDS.index("io_ms")] == 21000
    assert procfs.vmstat(str(fixtures / "proc"))["oom_kill"] == 3
    assert procfs.os_release(str(fixtures / "etc")) == "Debian GNU/Linux 13 (trixie)"
    assert procfs.os_release("/nonexistent") == "Unknown"


def test_fields_learn_a_layout_and_notice_another() -> None:
    pick = fsread.Fields(b"b", b"missing", b"d")
    assert pick(b"a 1\nb 2\nc 3\nd 4\n") == [2, None, 4]
    assert pick(b"a 5\nb 6\nc 7\nd 8\n") == [6, None, 8]  # the learned positions
    assert pick(b"d 9\nb 10\n") == [10, None, 9]  # another layout (the root's, another kernel's)
    assert pick(b"a 1\nb 2\nc 3\nmissing 4\n") == [2, 4, None]


def test_v1_cfq_tables_and_v2_iocost(fixtures: Path) -> None:
    io = open_reader(str(fixtures / "hybrid")).io(f"/hostwatch/{HW_ID}")
    assert io.merged["254:0"]["Read"] == 5 and io.service_time["254:0"]["Total"] == 5_000_000
    assert io.sectors["254:0"] == {"": 24} and io.queued["254:0"]["Total"] == 1
    plain = open_reader(str(fixtures / "v1")).io("/system.slice")
    assert plain.service_bytes == {} and plain.merged == {}  # "Total 0": no I/O, no tables
