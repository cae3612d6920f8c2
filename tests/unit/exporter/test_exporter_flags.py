"""cAdvisor's flag spellings and semantics: --disable_metrics / --enable_metrics with cAdvisor's kind
names (v0.60), --store_container_labels / --whitelisted_container_labels, the older --container-labels,
--web.max-requests, --enable_load_reader; and the same keys in the agent's config file."""

from __future__ import annotations

import argparse

import pytest

from exporter import command
from exporter.config import ExporterConfig, parse_bool
from exporter.groups import CADVISOR_KINDS, DEFAULT_DISABLED, NOT_IMPLEMENTED, resolve_disabled

# The line a common cAdvisor deployment runs with (it keeps tcp,udp off by naming them).
COMMON = "percpu,sched,tcp,udp,disk,diskIO,hugetlb,referenced_memory,cpu_topology,resctrl"


def parse(*argv: str) -> ExporterConfig:
    p = argparse.ArgumentParser(prog="hostwatch")
    sub = p.add_subparsers(dest="cmd", required=True)
    command.register(sub)
    return command.config_from_args(p.parse_args(["exporter", *argv]))


@pytest.mark.parametrize("spelling", ["--disable_metrics={}", "-disable_metrics={}", "--disable-metrics={}"])
def test_the_common_disable_line_is_accepted_in_every_spelling(spelling: str) -> None:
    cfg = parse(spelling.format(COMMON))
    assert cfg.disabled_metrics == {"percpu", "sched", "tcp", "udp", "disk", "diskIO", "hugetlb",
                                    "referenced_memory", "cpu_topology", "resctrl"}
    # the list replaces the default-off one, as cAdvisor's flag does: what it does not name is on
    assert "memory_numa" not in cfg.disabled_metrics and "cpuLoad" not in cfg.disabled_metrics


def test_defaults_are_cadvisors_default_off_list() -> None:
    cfg = parse()
    assert cfg.disabled_metrics == DEFAULT_DISABLED
    assert {"tcp", "udp", "advtcp", "sched"} <= cfg.disabled_metrics
    assert not {"cpu", "percpu", "memory", "cpuLoad", "diskIO", "disk", "network", "process"} & cfg.disabled_metrics


def test_enable_metrics_turns_on_exactly_what_it_names() -> None:
    cfg = parse("--enable_metrics=cpu,memory,tcp")
    assert cfg.disabled_metrics == set(CADVISOR_KINDS) - {"cpu", "memory", "tcp"}
    # it overrides --disable_metrics for cAdvisor's kinds; hostwatch's own groups stay as named there
    both = parse("--enable_metrics=cpu", "--disable_metrics=cpu,namespace")
    assert "cpu" not in both.disabled_metrics and "namespace" in both.disabled_metrics
    assert "spec" not in both.disabled_metrics


def test_every_cadvisor_kind_is_accepted_and_unknown_ones_named() -> None:
    assert parse("--disable_metrics=" + ",".join(CADVISOR_KINDS)).disabled_metrics == set(CADVISOR_KINDS)
    with pytest.raises(ValueError, match="unknown metric kind.s. bogus"):
        resolve_disabled("cpu,bogus")
    assert resolve_disabled("") == frozenset()  # an empty list turns everything on, as in cAdvisor


def test_help_lists_the_kinds_the_default_off_list_and_the_unimplemented(capsys: pytest.CaptureFixture[str]) -> None:
    p = argparse.ArgumentParser(prog="hostwatch")
    command.register(p.add_subparsers(dest="cmd", required=True))
    with pytest.raises(SystemExit):
        p.parse_args(["exporter", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "accepted but not implemented (produce nothing): " + ", ".join(NOT_IMPLEMENTED) in text
    assert "off by default: " + ", ".join(sorted(DEFAULT_DISABLED)) in text
    for flag in ("--disable_metrics", "--enable_metrics", "--store_container_labels",
                 "--whitelisted_container_labels", "--container-labels", "--web.max-requests", "--enable_load_reader"):
        assert flag in text, flag


def test_container_label_flags() -> None:
    assert parse().store_container_labels is True
    allow = parse("--store_container_labels=false", "--whitelisted_container_labels=a.b,c")
    assert (allow.store_container_labels, allow.label_allowlist) == (False, ("a.b", "c"))
    older = parse("--container-labels", "tier, com.example.team")
    assert (older.store_container_labels, older.label_allowlist) == (False, ("tier", "com.example.team"))
    assert parse("-store_container_labels").store_container_labels is True  # Go's bare boolean flag
    with pytest.raises(ValueError, match="invalid boolean"):
        parse("--store_container_labels=maybe")


def test_web_max_requests_and_load_reader() -> None:
    assert parse().max_requests == 40  # node_exporter's default
    assert parse("--web.max-requests", "2").max_requests == 2
    assert parse().load_reader is False and parse("--enable_load_reader").load_reader is True
    assert parse("--enable_load_reader=false").load_reader is False


def test_the_same_keys_in_the_config_file() -> None:
    cfg = ExporterConfig.from_mapping({"disable_metrics": COMMON, "store_container_labels": False,
                                       "whitelisted_container_labels": ["com.docker.compose.service"],
                                       "web.max-requests": 5, "enable_load_reader": True}, "agent.yml")
    assert "diskIO" in cfg.disabled_metrics and "memory_numa" not in cfg.disabled_metrics
    assert (cfg.store_container_labels, cfg.label_allowlist) == (False, ("com.docker.compose.service",))
    assert (cfg.max_requests, cfg.load_reader) == (5, True)
    older = ExporterConfig.from_mapping({"container_labels": "tier"}, "agent.yml")
    assert (older.store_container_labels, older.label_allowlist) == (False, ("tier",))


@pytest.mark.parametrize(("text", "want"), [("true", True), ("1", True), ("T", True), ("false", False),
                                            ("0", False), ("F", False)])
def test_go_booleans(text: str, want: bool) -> None:
    assert parse_bool(text) is want
