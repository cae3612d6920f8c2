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
        """`rm -f` everything; then, should the CLI itself be broken, kill and remove what is left
        directly through the cgroups, so a failing change never leaks a running container."""
        ids = self("ps", "-a", "-q").stdout.split()
        if ids:
            self("rm", "-f", *ids)
        if self.state_root.is_dir():
            from runtime.cgroups import detect

            cgroups = detect()
            for entry in os.listdir(self.state_root):
                if len(entry) == 64:
                    cgroups.remove(f"/hostwatch/{entry}")
