"""exporter/_speedups.c against pure-Python references: the row renderer (the f-string spelling it
replaced, and prometheus_client's encoder), the flat-keyed picker (a careful line parser), and
pread_all (os.pread), with thousands of random and hostile inputs."""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.utils import floatToGoString

from exporter import _speedups
from exporter.families import LabelSet, go_value

VALUES = [0, 1, 999_999, 1_000_000, 1_000_001, 1_234_000, 10**15, 2**53 - 1, 2**53, 2**63, 10**30, -1, -(10**7),
          0.0, -0.0, 0.5, 7.5, 1e-7, 1.5e-7, 123456.7, 1234567.0, 12345678.9, 1e15, 1e16, 1e22, -12345678.9,
          float("inf"), float("-inf"), float("nan"), True, False, 1796150462.564226]


def random_value(rng: random.Random) -> float:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randrange(10**6)
    if kind == 1:
        return rng.randrange(10**6, 2**64)
    if kind == 2:
        return rng.randrange(10**9, 10**13) / 1e9  # cpu seconds
    if kind == 3:
        return rng.random() * 10 ** rng.randrange(-12, 25) * rng.choice((1, -1))
    if kind == 4:
        return -rng.randrange(10**12)
    return rng.choice(VALUES)


def labelsets(rng: random.Random, n: int) -> list[LabelSet]:
    out = []
    for i in range(n):
        name = rng.choice(["web", "db-1", 'quo"te', "back\\slash", "new\nline", "ünïcödé", "日本", ""])
        out.append(LabelSet([("container_label_app", name + str(i)), ("id", f"/hostwatch/c{i}"),
                             ("image", rng.choice(["busybox", "", "reg/ïmg:1"])), ("name", name)]))
    return out


def test_go_value_matches_prometheus_client_for_every_kind_of_value() -> None:
    rng = random.Random(7)
    ls = LabelSet([("id", "/"), ("image", ""), ("name", "")])
    values = VALUES + [random_value(rng) for _ in range(20_000)]
    got = _speedups.render_plain("m{", [(ls, (), v) for v in values], go_value).decode().splitlines()
    want = [f'm{{id="/",image="",name=""}} {floatToGoString(v)}' for v in values]
    assert got == want


def test_plain_and_extra_rows_are_the_f_string_spelling_they_replaced() -> None:
    rng = random.Random(11)
    checked = 0
    for _ in range(50):
        lss = labelsets(rng, rng.randrange(0, 60))
        checked += len(lss)
        rows = [(ls, (), random_value(rng)) for ls in lss]
        ref = "".join(f"c{{{ls.full}}} {go_value(v)}\n" for ls, _, v in rows).encode()
        assert _speedups.render_plain("c{", rows, go_value) == ref
        extras = [("0",), ("1",), ("total",)]
        parts = {e: ("", "", f',cpu="cpu{e[0]}"') for e in extras}
        erows = [(ls, rng.choice(extras), random_value(rng)) for ls in lss]
        ref = "".join(f"c{{{ls.lead}{p[0]}{ls.idimg}{p[1]}{ls.name}{p[2]}}} {go_value(v)}\n"
                      for ls, e, v in erows for p in (parts[e],)).encode()
        assert _speedups.render_extra("c", erows, parts, go_value) == ref
    assert checked > 1000  # rows compared, each way


def test_bad_rows_raise_instead_of_writing_garbage() -> None:
    ls = LabelSet([("id", "/"), ("image", ""), ("name", "")])
    for rows in ([(ls, ())], [None], [(None, (), 1)], [(object(), (), 1)]):
        with pytest.raises((TypeError, AttributeError)):
            _speedups.render_plain("m{", rows, go_value)
    with pytest.raises(KeyError):
        _speedups.render_extra("m", [(ls, ("x",), 1)], {}, go_value)
    with pytest.raises(ZeroDivisionError):  # the fallback's exception comes through
        _speedups.render_plain("m{", [(ls, (), "v")], lambda v: str(1 / 0))


def reference_pick(data: bytes, keys: tuple[bytes, ...]) -> list[int | None]:
    """Each key's first line `key<space or tab>value`; the value an optionally negative run of ASCII
    digits (spaces and tabs around it, a \\r after it) that fits 64 bits."""
    out: list[int | None] = []
    lines = data.split(b"\n")
    for key in keys:
        value: int | None = None
        for line in lines:
            if line.startswith(key) and line[len(key):len(key) + 1] in (b" ", b"\t"):
                text = line[len(key):].lstrip(b" \t").rstrip(b" \t\r")
                body = text[1:] if text.startswith(b"-") else text
                if body.isdigit():
                    v = int(text)
                    value = v if -(2**63) <= v < 2**64 else None
                break
        out.append(value)
    return out


def test_pick_reads_values_and_learns_where_keys_sit() -> None:
    keys = (b"total_rss", b"missing", b"pgfault", b"neg")
    hints = [-1] * len(keys)
    stat = b"cache 1\ntotal_rss_huge 9\ntotal_rss 42\npgfault 18446744073709551615\nneg -5\n"
    assert _speedups.pick(stat, keys, hints) == [42, None, 2**64 - 1, -5]
    assert hints == [2, -1, 3, 4]
    assert _speedups.pick(b"neg -7\npgfault 3\ntotal_rss 1", keys, hints) == [1, None, 3, -7]  # no final \n
    assert hints == [2, -1, 1, 0]
    assert _speedups.pick(b"total_rss x\npgfault 18446744073709551616\nneg --1\n", keys, hints) == [None] * 4
    assert _speedups.pick(b"", keys, hints) == [None] * 4
    with pytest.raises(ValueError):
        _speedups.pick(b"a 1", (b"a",), [])


def test_pick_agrees_with_a_careful_parser_on_random_and_mutated_files() -> None:
    rng = random.Random(3)
    names = [b"rss", b"cache", b"total_rss", b"pgfault", b"x", b"rss_huge", b"nr_periods"]
    keys = tuple(names[:5])
    hints = [-1] * len(keys)
    compared = 0
    for _ in range(5000):
        lines = []
        for name in rng.sample(names, rng.randrange(len(names) + 1)):
            value = rng.choice([str(rng.randrange(2**64)).encode(), b"-3", b"12a", b"", b" 7", b"99\r", b"1 2"])
            lines.append(name + rng.choice([b" ", b"\t", b"  "]) + value)
        data = b"\n".join(lines) + rng.choice([b"\n", b""])
        if rng.random() < 0.3:  # a mutated byte
            i = rng.randrange(len(data) + 1)
            data = data[:i] + bytes([rng.randrange(256)]) + data[i + 1:]
        got = _speedups.pick(data, keys, hints)
        if len({line.split()[0] for line in data.split(b"\n") if line.split()}) == len(
                [line for line in data.split(b"\n") if line.split()]):  # keys unique: one answer
            assert got == reference_pick(data, keys), data
            compared += 1
        assert len(got) == len(keys)
    assert compared > 3000  # files whose keys are unique, so that one answer is right


def test_pread_all_reads_every_kept_file_and_leaves_out_failures(tmp_path: Path) -> None:
    fds: dict[str, int] = {}
    try:
        for i in range(600):  # more than one batch of 256
            path = tmp_path / f"f{i}"
            path.write_bytes(os.urandom(i * 13 % 5000))
            fds[str(path)] = os.open(path, os.O_RDONLY)
        closed = os.open(tmp_path / "f0", os.O_RDONLY)
        os.close(closed)
        fds["closed"] = closed
        fds["dir"] = os.open(tmp_path, os.O_RDONLY)  # pread of a directory fails (EISDIR)
        got = _speedups.pread_all(fds, 4096)
        assert set(got) == set(fds) - {"closed", "dir"}
        for path, fd in fds.items():
            if path in got:
                assert got[path] == os.pread(fd, 4096, 0)
        assert max(map(len, got.values())) == 4096
    finally:
        for path, fd in fds.items():
            if path != "closed":
                os.close(fd)
    with pytest.raises(ValueError):
        _speedups.pread_all({"x": -1}, 4096)
    with pytest.raises(ValueError):
        _speedups.pread_all({}, 0)


def test_taker_hands_out_a_prefetched_whole_file_once_and_leaves_the_rest_to_its_fallback() -> None:
    asked: list[tuple[str, str]] = []

    def fallback(owner: str, path: str) -> bytes:
        asked.append((owner, path))
        return b"read:" + path.encode()

    take = _speedups.Taker(fallback, 8)
    take.ahead = {"a": b"short", "b": b"12345678", "c": b""}
    assert take("o", "a") == b"short" and take("o", "c") == b""
    assert take("o", "a") == b"read:a"  # handed out once
    assert take("o", "b") == b"read:b"  # as long as the chunk: maybe cut short, read whole
    assert take("o", "x") == b"read:x" and take.ahead == {}
    assert asked == [("o", "a"), ("o", "b"), ("o", "x")]
    with pytest.raises(TypeError):
        take.ahead = None  # type: ignore[assignment]
    with pytest.raises(TypeError):
        take("only-one")  # type: ignore[call-arg]  # the fallback's own error


def test_fd_counts_counts_entries_and_socket_links_as_a_listing_and_readlinks_would(tmp_path: Path) -> None:
    fd = tmp_path / "fd"
    fd.mkdir()
    for i, target in enumerate(["socket:[123]", "/dev/null", "pipe:[9]", "socket:[77]", "anon_inode:[eventfd]"]):
        (fd / str(i)).symlink_to(target)
    (fd / "plain").write_text("not a link")  # readlink fails: counted, not a socket
    assert _speedups.fd_counts(str(fd)) == (6, 2)
    with pytest.raises(FileNotFoundError) as e:
        _speedups.fd_counts(str(tmp_path / "gone"))
    assert e.value.filename == str(tmp_path / "gone").encode()
    names = os.listdir("/proc/self/fd")
    sockets = sum(os.readlink(f"/proc/self/fd/{n}").startswith("socket:") for n in names if os.path.islink(
        f"/proc/self/fd/{n}"))
    got = _speedups.fd_counts("/proc/self/fd")
    assert abs(got[0] - len(names)) <= 1 and got[1] == sockets  # its own directory fd comes and goes


def test_a_float_repeated_row_after_row_is_spelled_the_same_every_time() -> None:
    """The renderer remembers the last float it wrote (container_last_seen repeats once per container)."""
    ls = LabelSet([("id", "/"), ("image", ""), ("name", "")])
    values = [1796150462.5642261] * 3 + [0.0, -0.0, -0.0, 0.0, 2.5, 1796150462.5642261, float("nan"), float("nan"),
                                          12345678.9, 12345678.9, 7, 7.0]
    got = _speedups.render_plain("m{", [(ls, (), v) for v in values], go_value).decode().splitlines()
    assert got == [f'm{{id="/",image="",name=""}} {floatToGoString(v)}' for v in values]


def test_add_rows_and_add_labelled_append_the_row_tuples_a_collector_would() -> None:
    ls = LabelSet([("id", "/"), ("image", ""), ("name", "")])
    a: list[Any] = []
    b: list[Any] = []
    _speedups.add_rows([a, b], ls, (), (5, None))
    assert a == [(ls, (), 5)] and b == [(ls, (), 0)]  # None: 0, as cAdvisor reports a missing value
    _speedups.add_labelled(a, ls, (("x",), ("y",)), [1.5, None])
    assert a[1:] == [(ls, ("x",), 1.5), (ls, ("y",), 0)]
    with pytest.raises(ValueError):
        _speedups.add_rows([a], ls, (), (1, 2))
    with pytest.raises(ValueError):
        _speedups.add_labelled(a, ls, (("x",),), [])
    with pytest.raises(TypeError):
        _speedups.add_rows([None], ls, (), (1,))  # type: ignore[list-item]
