import logging

import pytest

from logshipper.sources.complaints import Complaints


def test_first_of_each_reason_logged_then_one_line_per_interval_with_the_count(
        caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    complain = Complaints("gelf", logging.getLogger("test.complaints"), clock=lambda: now[0], interval=60.0)
    with caplog.at_level(logging.WARNING, logger="test.complaints"):
        complain("oversized", "a")
        complain("oversized", "b")
        complain("garbage", "c")
        complain("oversized", "d")
        now[0] += 61
        complain("oversized", "e")
    assert [r.getMessage() for r in caplog.records] == [
        "gelf: rejected (oversized): a",
        "gelf: rejected (garbage): c",
        "gelf: rejected (oversized): e (and 2 more since)",
    ]
