"""Dual logging: journald/fluentd/gelf keep a readable json-file copy, like Docker since 20.10."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.logdrivers import LogInfo, LogMessage, cache, create, validate

CID = "cafe" * 16


def _closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _info(tmp_path: Path, **opts: str) -> LogInfo:
    return LogInfo(container_id=CID, container_name="c", image_name="busybox", image_id="",
                   opts=opts, cache_path=str(tmp_path / "container-cached.log"))


def test_gelf_messages_also_land_in_the_local_cache(tmp_path: Path) -> None:
    drv = create("gelf", _info(tmp_path, **{"gelf-address": f"udp://127.0.0.1:{_closed_udp_port()}",
                                            "cache-max-size": "1k", "cache-max-file": "3"}))
    for i in range(40):
        drv.log(LogMessage(f"line {i}".encode(), "stdout" if i % 2 else "stderr", 1_700_000_000_000_000_000 + i))
    drv.close()
    files = sorted(tmp_path.glob("container-cached.log*"))
    assert len(files) >= 2  # rotated by cache-max-size
    current = [json.loads(line) for line in (tmp_path / "container-cached.log").read_text().splitlines()]
    assert current[-1] == {"log": "line 39\n", "stream": "stdout", "time": "2023-11-14T22:13:20.000000039Z"}


def test_cache_disabled_writes_no_cache(tmp_path: Path) -> None:
    drv = create("gelf", _info(tmp_path, **{"gelf-address": "udp://127.0.0.1:9", "cache-disabled": "true"}))
    drv.log(LogMessage(b"x", "stdout", 1))
    drv.close()
    assert not (tmp_path / "container-cached.log").exists()


def test_json_file_is_readable_itself_and_gets_no_cache(tmp_path: Path) -> None:
    info = replace(_info(tmp_path), log_path=str(tmp_path / f"{CID}-json.log"))  # a cache_path, even
    drv = create("json-file", info)
    drv.log(LogMessage(b"x", "stdout", 1_700_000_000_000_000_000))
    drv.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{CID}-json.log"]
    assert json.loads((tmp_path / f"{CID}-json.log").read_text())["log"] == "x\n"


@pytest.mark.parametrize(("driver", "opts", "message"), [
    ("json-file", {"cache-max-size": "1m"}, "apply only to"),
    ("fluentd", {"cache-max-size": "lots"}, "log cache"),
    ("fluentd", {"cache-disabled": "maybe"}, "invalid boolean"),
    ("gelf", {"gelf-address": "udp://127.0.0.1:9", "cache-max-file": "0"}, "max-file"),
])
def test_bad_cache_opts_are_rejected(driver: str, opts: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate(driver, opts)


def test_cache_opts_are_accepted_where_docker_accepts_them() -> None:
    opts = {"cache-max-size": "5m", "cache-max-file": "2", "cache-compress": "false"}
    validate("fluentd", opts)
    cfg = cache.parse_config("fluentd", opts)
    # sizes as Docker's json-file reads them (go-units FromHumanSize): decimal, 5m = 5,000,000 bytes
    assert cfg is not None and (cfg.max_size, cfg.max_file, cfg.compress) == (5_000_000, 2, False)
    validate("journald", {"cache-disabled": "true"})
    assert cache.parse_config("journald", {"cache-disabled": "true"}) is None


def test_the_cache_defaults_are_dockers() -> None:
    cfg = cache.parse_config("gelf", {})
    assert cfg is not None and (cfg.max_size, cfg.max_file, cfg.compress) == (20_000_000, 5, True)
