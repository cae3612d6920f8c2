"""Driving the `hostwatch` CLI from tests the way a user does."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any


class HW:
    """Runs the `hostwatch` CLI the way a user does, against a private state root."""

    def __init__(self, state_root: Path) -> None:
        self.state_root = state_root
        self.env = dict(os.environ, HOSTWATCH_STATE_ROOT=str(state_root))

    def __call__(self, *args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "hostwatch", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"hostwatch {' '.join(args)} -> {proc.returncode}: {proc.stderr}")
        return proc

    def inspect(self, ref: str) -> dict[str, Any]:
        return json.loads(self("inspect", ref, check=True).stdout)[0]

    def cleanup(self) -> None:
        ids = self("ps", "-a", "-q").stdout.split()
        if ids:
            self("rm", "-f", *ids)
