"""validate()/create(): option checking, value syntax, tag templates, extra attributes."""

from __future__ import annotations

import pytest

from runtime.logdrivers import DRIVERS, LogInfo, LogMessage, create, validate
from runtime.logdrivers.options import extra_attributes, parse_duration, parse_size, render_tag

CID = "f" * 4 + "0123456789abcdef" * 3 + "0123456789ab"


def make_info(**opts: str) -> LogInfo:
    return LogInfo(
        container_id=CID,
        container_name="api",
        image_name="registry.local/api:1.2",
        image_id="sha256:" + "9" * 12 + "e" * 52,
        command=["/bin/api", "--port", "80"],
        created="2024-01-02T03:04:05.6Z",
        labels={"team": "core", "com.example.tier": "web", "other": "x"},
        env=["A=1", "B=two=2", "BROKEN", "TIER_LEVEL=3"],
        log_path="/nonexistent/x-json.log",
        opts=dict(opts),
    )


GOOD = [
    ("json-file", {}),
    ("json-file", {"max-size": "10m", "max-file": "3", "compress": "true"}),
    ("json-file", {"max-size": "-1"}),
    ("json-file", {"max-size": "512", "labels": "a,b", "env": "X", "tag": "{{.Name}}", "labels-regex": "^a"}),
    ("json-file", {"mode": "non-blocking", "max-buffer-size": "4m"}),
    ("journald", {}),
    ("journald", {"journald-socket": "/run/systemd/journal.x/socket", "tag": "{{.ImageName}}"}),
    ("journald", {"mode": "blocking"}),
    ("journald", {"max-buffer-size": "64k"}),
    ("fluentd", {}),
    ("fluentd", {"fluentd-address": "127.0.0.1:24224"}),
    ("fluentd", {"fluentd-address": "tcp://localhost:24225"}),
    ("fluentd", {"fluentd-address": "unix:///run/fluent.sock"}),
    ("fluentd", {"fluentd-address": "somehost"}),
    ("fluentd", {"fluentd-retry-wait": "1m30s", "fluentd-max-retries": "5", "fluentd-buffer-limit": "8MiB"}),
    ("fluentd", {"fluentd-async": "true", "fluentd-sub-second-precision": "True"}),
    ("gelf", {"gelf-address": "udp://127.0.0.1:12201"}),
    ("gelf", {"gelf-address": "udp://[::1]:12201", "gelf-compression-type": "zlib", "gelf-compression-level": "9"}),
    ("gelf", {"gelf-address": "tcp://127.0.0.1:12201", "gelf-tcp-max-reconnect": "0"}),
    ("none", {}),
]


@pytest.mark.parametrize(("driver", "opts"), GOOD)
def test_valid_options_are_accepted(driver: str, opts: dict[str, str]) -> None:
    validate(driver, opts)
    # ... by a validator that reads them: the same options plus an unknown key are refused
    with pytest.raises(ValueError, match="no-such-opt"):
        validate(driver, {**opts, "no-such-opt": "1"})


BAD = [
    ("syslog", {}, "unknown log driver 'syslog'"),
    ("json-file", {"max-szie": "1m"}, "unknown log opt 'max-szie' for json-file"),
    ("json-file", {"max-size": "ten"}, "max-size"),
    ("json-file", {"max-size": "10x"}, "max-size"),
    ("json-file", {"max-size": "0"}, "max-size"),
    ("json-file", {"max-file": "0"}, "max-file"),
    ("json-file", {"max-file": "two"}, "max-file"),
    ("json-file", {"compress": "yes"}, "compress"),
    ("json-file", {"compress": "true", "max-size": "1m"}, "compress"),
    ("json-file", {"compress": "true", "max-file": "3"}, "compress"),
    ("json-file", {"max-buffer-size": "1m"}, "max-buffer-size"),
    ("json-file", {"mode": "fast"}, "mode"),
    ("json-file", {"tag": "{{.Nmae}}"}, "{{.Nmae}}"),
    ("json-file", {"tag": "{{json .}}"}, "tag"),
    ("json-file", {"tag": "{{.ID"}, "tag"),
    ("json-file", {"labels-regex": "("}, "labels-regex"),
    ("journald", {"journald-socket": "relative/socket"}, "journald-socket"),
    ("journald", {"max-size": "1m"}, "unknown log opt 'max-size' for journald"),
    ("journald", {"max-buffer-size": "lots"}, "max-buffer-size"),
    ("journald", {"mode": "blocking", "max-buffer-size": "1m"}, "max-buffer-size"),
    ("fluentd", {"fluentd-address": "udp://127.0.0.1:24224"}, "fluentd-address"),
    ("fluentd", {"fluentd-address": "127.0.0.1:port"}, "fluentd-address"),
    ("fluentd", {"fluentd-address": "127.0.0.1:70000"}, "fluentd-address"),
    ("fluentd", {"fluentd-address": "unix://relative"}, "fluentd-address"),
    ("fluentd", {"fluentd-retry-wait": "1 second"}, "fluentd-retry-wait"),
    ("fluentd", {"fluentd-max-retries": "-1"}, "fluentd-max-retries"),
    ("fluentd", {"fluentd-buffer-limit": "big"}, "fluentd-buffer-limit"),
    ("fluentd", {"fluentd-async": "true", "fluentd-async-connect": "true"}, "fluentd-async"),
    ("fluentd", {"fluentd-async-reconnect-interval": "20s"}, "fluentd-async-reconnect-interval"),
    ("fluentd", {"fluentd-request-ack": "true"}, "fluentd-request-ack"),
    ("fluentd", {"fluentd-sub-second-precision": "maybe"}, "fluentd-sub-second-precision"),
    ("fluentd", {"gelf-address": "udp://127.0.0.1:1"}, "unknown log opt 'gelf-address' for fluentd"),
    ("gelf", {}, "gelf-address"),
    ("gelf", {"gelf-address": "127.0.0.1:12201"}, "gelf-address"),
    ("gelf", {"gelf-address": "http://127.0.0.1:12201"}, "gelf-address"),
    ("gelf", {"gelf-address": "udp://127.0.0.1"}, "gelf-address"),
    ("gelf", {"gelf-address": "udp://:12201"}, "gelf-address"),
    ("gelf", {"gelf-address": "udp://127.0.0.1:0"}, "gelf-address"),
    ("gelf", {"gelf-address": "udp://h:1", "gelf-compression-type": "lz4"}, "gelf-compression-type"),
    ("gelf", {"gelf-address": "udp://h:1", "gelf-compression-level": "10"}, "gelf-compression-level"),
    ("gelf", {"gelf-address": "tcp://h:1", "gelf-compression-type": "gzip"}, "gelf-compression-type"),
    ("gelf", {"gelf-address": "udp://h:1", "gelf-tcp-max-reconnect": "3"}, "gelf-tcp-max-reconnect"),
    ("gelf", {"gelf-address": "tcp://h:1", "gelf-tcp-reconnect-delay": "-3"}, "gelf-tcp-reconnect-delay"),
    ("none", {"max-size": "1m"}, "none"),
]


@pytest.mark.parametrize(("driver", "opts", "needle"), BAD)
def test_bad_options_are_rejected_with_a_one_line_reason(driver: str, opts: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError) as exc:
        validate(driver, opts)
    message = str(exc.value)
    assert needle in message
    assert "\n" not in message


def test_create_checks_options_too() -> None:
    with pytest.raises(ValueError, match="gelf-address"):
        create("gelf", make_info())


def test_driver_list() -> None:
    assert DRIVERS == ("json-file", "journald", "fluentd", "gelf", "none")


def test_none_driver_discards() -> None:
    drv = create("none", make_info())
    drv.log(LogMessage(b"x", "stdout", 1))
    drv.close()
    assert drv.dropped == 0


@pytest.mark.parametrize(
    ("text", "binary", "expected"),
    [
        ("512", False, 512),
        ("1k", False, 1000),
        ("1.5k", False, 1500),
        ("10m", False, 10_000_000),
        ("10MB", False, 10_000_000),
        ("2g", False, 2_000_000_000),
        ("1KiB", True, 1024),
        ("8MiB", True, 8 * 1024 * 1024),
        ("1m", True, 1024 * 1024),
        ("100b", False, 100),
    ],
)
def test_sizes_follow_go_units(text: str, binary: bool, expected: int) -> None:
    assert parse_size("max-size", text, binary) == expected


@pytest.mark.parametrize(
    ("text", "seconds"), [("1s", 1.0), ("500ms", 0.5), ("1m30s", 90.0), ("0", 0.0), ("1.5h", 5400.0), ("2us", 2e-6)]
)
def test_durations_follow_go(text: str, seconds: float) -> None:
    assert parse_duration("fluentd-retry-wait", text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("", "ffff01234567"),
        ("{{.ID}}", "ffff01234567"),
        ("{{.FullID}}", CID),
        ("{{.Name}}", "api"),
        ("{{ .Name }}/{{.ID}}", "api/ffff01234567"),
        ("{{.ImageName}}", "registry.local/api:1.2"),
        ("{{.ImageID}}", "999999999999"),
        ("{{.ImageFullID}}", "sha256:" + "9" * 12 + "e" * 52),
        ("{{.DaemonName}}", "hostwatch"),
        ("{{.ContainerName}}", "/api"),
        ("static", "static"),
    ],
)
def test_tag_templates(template: str, expected: str) -> None:
    assert render_tag(make_info(tag=template)) == expected


def test_extra_attributes_follow_docker() -> None:
    info = make_info(labels="team,missing", env="A,B,BROKEN", **{"env-regex": "^TIER_"})
    assert extra_attributes(info) == {"team": "core", "A": "1", "B": "two=2", "TIER_LEVEL": "3"}
    info = make_info(**{"labels-regex": r"\.tier$"})
    assert extra_attributes(info, str.upper) == {"COM.EXAMPLE.TIER": "web"}
    assert extra_attributes(make_info()) == {}
