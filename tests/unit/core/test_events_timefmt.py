import random

import pytest

from hostwatch.core.events import OrderedCommitter
from hostwatch.core.timefmt import parse_duration, parse_rfc3339_ns, rfc3339_nano


def test_ordered_committer_commits_only_contiguous_prefix() -> None:
    c = OrderedCommitter()
    seqs = [c.track(pos) for pos in (10, 20, 30, 40)]
    assert c.done(seqs[1]) is None  # 10 still pending
    assert c.done(seqs[2]) is None
    assert c.done(seqs[0]) == 30  # 10, 20, 30 all delivered now
    assert c.outstanding == 1
    assert c.done(seqs[0]) is None  # a second ack changes nothing
    assert c.done(seqs[3]) == 40 and c.outstanding == 0


def test_ordered_committer_random_order_ends_at_last() -> None:
    rng = random.Random(7)
    c = OrderedCommitter()
    seqs = [c.track(i) for i in range(1000)]
    rng.shuffle(seqs)
    committed = [x for s in seqs if (x := c.done(s)) is not None]
    assert committed == sorted(committed) and committed[-1] == 999


@pytest.mark.parametrize("text, ns", [
    ("2026-12-01T08:00:00.123456789Z", 1796112000_123456789),
    ("2026-12-01T08:00:00Z", 1796112000_000000000),
    ("2026-12-01T09:00:00.5+01:00", 1796112000_500000000),
    ("2026-12-01T07:30:00.000000001-00:30", 1796112000_000000001),
])
def test_parse_rfc3339_ns_is_exact(text: str, ns: int) -> None:
    assert parse_rfc3339_ns(text) == ns


def test_rfc3339_round_trip() -> None:
    ns = 1796112000_123456700
    assert rfc3339_nano(ns=ns) == "2026-12-01T08:00:00.1234567Z"
    assert parse_rfc3339_ns(rfc3339_nano(ns=ns)) == ns
    assert parse_rfc3339_ns("0001-01-01T00:00:00Z") is None
    with pytest.raises(ValueError):
        parse_rfc3339_ns("yesterday")


@pytest.mark.parametrize("text, seconds", [("500ms", 0.5), ("30s", 30), ("5m", 300), ("1h30m", 5400),
                                           ("2d", 172800), ("1.5", 1.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "m5", "1h 30m", "-"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
