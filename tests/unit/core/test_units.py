import pytest

from hostwatch.core.cgroupfs import parse_cpuset
from hostwatch.core.units import parse_cpus, parse_size


@pytest.mark.parametrize(("text", "expected"), [
    ("512", 512), ("1k", 1024), ("64m", 64 << 20), ("64M", 64 << 20), ("1.5g", 3 << 29),
    ("10MiB", 10 << 20), ("10mb", 10 << 20), ("2b", 2),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["12q", "", "m", "-1m", "1.2.3k"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)


def test_parse_cpus() -> None:
    assert parse_cpus("0.5") == 500_000_000
    assert parse_cpus("2") == 2_000_000_000
    for bad in ("abc", "0", "-1"):
        with pytest.raises(ValueError, match="--cpus"):
            parse_cpus(bad)


def test_parse_cpuset() -> None:
    assert parse_cpuset("0-2,4") == "0-2,4"
    with pytest.raises(ValueError):
        parse_cpuset("0-")

