"""Suite-wide: the names of failed tests are the last thing printed.

In CI pytest prints assertion diffs untruncated (a 20,000-line list is 20,000 lines) and CI keeps only
the tail of the output, so without this the names can scroll out of what is kept."""

from __future__ import annotations

from collections.abc import Generator

import pytest


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: after the short test summary
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None]:
    yield
    failed = [r.nodeid for key in ("failed", "error") for r in terminalreporter.stats.get(key, [])]
    if failed:
        terminalreporter.write_sep("=", "failed or errored (names only)")
        for nodeid in failed:
            terminalreporter.write_line(nodeid)
