"""The one way tests run `atlas` as a real subprocess (own interpreter, own exit code, stdout and stderr apart)."""

from __future__ import annotations

import os
import subprocess
import sys

ATLAS = [sys.executable, "-c", "from atlas.cli import main; main()"]


def atlas_env(**overrides: str | None) -> dict[str, str]:
    """The environment of the test process (ATLAS_* of our instance) with overrides; None removes a variable.
    Progress bars are on although stderr is a pipe: some tests pick their kill point from them."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ATLAS_PROGRESS": "always"}
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_atlas(*args: object, env: dict[str, str] | None = None, timeout: float = 300
              ) -> subprocess.CompletedProcess:
    """Run one `atlas` command to the end and capture its output."""
    return subprocess.run([*ATLAS, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env or atlas_env())
