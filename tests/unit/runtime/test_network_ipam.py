from pathlib import Path

import pytest

from runtime import network


@pytest.fixture(autouse=True)
def _private_run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTWATCH_RUN_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("HOSTWATCH_BRIDGE_SUBNET", "10.99.0.0/29")


def _owner(tmp_path: Path, name: str) -> Path:
    d = tmp_path / "state" / name
    d.mkdir(parents=True)
    return d


def test_addresses_are_leased_across_state_roots_and_released(tmp_path: Path) -> None:
    a, b = _owner(tmp_path, "a"), _owner(tmp_path / "other-root", "b")
    assert network.allocate_ip(a) == "10.99.0.2/29"
    assert network.allocate_ip(b) == "10.99.0.3/29"
    network.release_ip("10.99.0.2/29", b)  # not b's lease: kept
    assert network.allocate_ip(_owner(tmp_path, "c")) == "10.99.0.4/29"
    network.release_ip("10.99.0.2/29", a)
    assert network.allocate_ip(_owner(tmp_path, "d")) == "10.99.0.2/29"


def test_a_lease_whose_owner_is_gone_is_reused_and_exhaustion_is_an_error(tmp_path: Path) -> None:
    owners = [_owner(tmp_path, f"o{i}") for i in range(5)]  # /29: .2 to .6
    ips = [network.allocate_ip(o) for o in owners]
    assert ips == [f"10.99.0.{i}/29" for i in range(2, 7)]
    with pytest.raises(network.NetworkError, match="no free address"):
        network.allocate_ip(_owner(tmp_path, "late"))
    owners[3].rmdir()  # removed without `rm`: the lease is stale
    assert network.allocate_ip(_owner(tmp_path, "next")) == "10.99.0.5/29"


def test_subnet_must_be_private(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTWATCH_BRIDGE_SUBNET", "8.8.8.0/24")
    with pytest.raises(network.NetworkError, match="not a private range"):
        network.subnet()
