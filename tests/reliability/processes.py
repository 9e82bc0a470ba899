"""Run `atlas` as a real subprocess and kill it with SIGKILL at a point observed from outside.

No fault-injection hook exists in the product: a kill point is a condition on what the outside world can see
(the subprocess's stderr, the graph, files in a run directory), polled while the process works.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.cli import ATLAS, atlas_env


def visible_lines(stream: str) -> list[str]:
    """The non-empty lines a terminal would show: progress-bar redraws (carriage returns) keep only their last state."""
    lines = [line.split("\r")[-1] for line in stream.split("\n")]
    return [line for line in lines if line.strip()]


PROGRESS_BAR = re.compile(r"\d+%\|.*\| [\d.]+k?/[\d.?]+k?")  # a tqdm bar's last state is progress, not an error


def error_lines(stream: str) -> list[str]:
    """The visible lines of stderr that are not progress bars: a user error must be exactly one of them."""
    return [line for line in visible_lines(stream) if not PROGRESS_BAR.search(line)]


@dataclass
class Interrupted:
    """How a killed (or finished) subprocess ended."""

    killed: bool
    returncode: int
    stderr: str
    seconds: float
    observed: object = None  # what the kill condition returned when it fired


def kill_when(args: list[object], condition: Callable[[str], object], *, env: dict[str, str] | None = None,
              timeout: float = 300, poll: float = 0.005) -> Interrupted:
    """Start `atlas *args`, poll ``condition(stderr so far)``; SIGKILL the process as soon as it is truthy.

    Returns ``killed=False`` when the process ended before the condition fired (the caller decides whether that
    is a failure).
    """
    with tempfile.TemporaryFile("w+b") as err, tempfile.TemporaryFile("w+b") as out:
        process = subprocess.Popen([*ATLAS, *map(str, args)], stdout=out, stderr=err, env=env or atlas_env(),
                                   start_new_session=True)
        started = time.monotonic()
        observed = None
        try:
            while process.poll() is None:
                err.seek(0)
                text = err.read().decode("utf-8", "replace")
                observed = condition(text)
                if observed:
                    os.kill(process.pid, signal.SIGKILL)
                    break
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"atlas {args} neither finished nor reached its kill point in {timeout}s")
                time.sleep(poll)
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    return Interrupted(process.returncode == -signal.SIGKILL, process.returncode, stderr,
                       time.monotonic() - started, observed)


def files_of(directory: Path) -> dict[str, bytes]:
    """Every regular file under ``directory`` (relative path -> bytes), temporary dot-files included."""
    return {str(path.relative_to(directory)): path.read_bytes()
            for path in sorted(directory.rglob("*")) if path.is_file()}
