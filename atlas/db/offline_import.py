"""The offline import's claim on the managed instance: while neo4j-admin rewrites database 'neo4j' the server stays
down, and a store that an interrupted import left half-written is never served.

`atlas ingest --offline` holds an exclusive lock (``run/offline-import.lock``; the kernel releases it when the
process dies, SIGKILL included) from start to end, and writes a marker (``run/offline-import.json``: the runs, its
pid, the importer's pid) before it stops the server for the import; the marker goes once the import succeeded. So
a marker under a held lock means an import is running, and a marker under a free lock means one was interrupted.
neo4j-admin runs in its own process group (a kill of the ingest does not reach it), so an interrupted import may
leave an orphan importer still writing: whoever finds the marker stops it first. A rerun of the import then
replaces the database from scratch; :func:`refuse_start` keeps the server down until then.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

from atlas.db.artifacts import ADMIN_TOOL
from atlas.errors import AtlasError
from atlas.processes import process_alive

DATABASE = "neo4j"


@dataclass
class Marker:
    """What the marker file records about an offline import."""

    runs: list[str]
    ingest_pid: int
    importer_pid: int | None = None
    started: float = field(default_factory=time.time)


def _run_dir(home: Path) -> Path:
    return home / "run"


def marker_path(home: Path) -> Path:
    """The marker of an offline import in progress in the instance at ``home`` (``$ATLAS_HOME/neo4j``)."""
    return _run_dir(home) / "offline-import.json"


def read_marker(home: Path) -> Marker | None:
    """The marker left by an offline import that has not finished, if any."""
    try:
        return Marker(**json.loads(marker_path(home).read_text()))
    except FileNotFoundError:
        return None


def _write_marker(home: Path, marker: Marker) -> None:
    path = marker_path(home)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(marker)))
    os.replace(temporary, path)


def _open_lock(home: Path) -> int:
    _run_dir(home).mkdir(parents=True, exist_ok=True)
    return os.open(_run_dir(home) / "offline-import.lock", os.O_RDWR | os.O_CREAT, 0o600)


def _try_lock(descriptor: int) -> bool:
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def import_running(home: Path) -> bool:
    """Whether a live `atlas ingest --offline` holds the instance (it holds the lock until it ends)."""
    descriptor = _open_lock(home)
    try:
        return not _try_lock(descriptor)
    finally:
        os.close(descriptor)  # closing releases a lock we took just to look


def importer_pids(home: Path, marker: Marker | None = None) -> list[int]:
    """Live neo4j-admin import processes of the instance at ``home``: found in /proc by their command line and
    NEO4J_HOME, plus the one the marker names."""
    wanted = f"NEO4J_HOME={home}".encode()
    pids = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            arguments = (entry / "cmdline").read_bytes().split(b"\0")
            if ADMIN_TOOL.encode() in arguments and b"import" in arguments \
                    and wanted in (entry / "environ").read_bytes().split(b"\0"):
                pids.add(int(entry.name))
        except (OSError, ValueError):
            continue
    if marker is not None and marker.importer_pid is not None:
        pids.add(marker.importer_pid)
    return sorted(pid for pid in pids if process_alive(pid))


def stop_orphan_importers(home: Path, marker: Marker | None, timeout: float = 60) -> list[int]:
    """SIGKILL the importers an interrupted import left running (each its own process group); wait until gone."""
    pids = importer_pids(home, marker)
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + timeout
    while any(process_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise AtlasError(f"the importer of an interrupted offline import (pid {pids[0]}) does not stop; end it and "
                             "run `atlas db start` again")
        time.sleep(0.05)
    return pids


def _delete_store(home: Path) -> None:
    """Delete database 'neo4j' (store and transaction logs): the server creates it empty on its next start."""
    for path in (home / "data" / "databases" / DATABASE, home / "data" / "transactions" / DATABASE):
        shutil.rmtree(path, ignore_errors=True)


def discard_interrupted(home: Path) -> bool:
    """Stop the orphan importer and delete the half-written database, so the server starts it empty; False if no
    import was interrupted."""
    descriptor = _open_lock(home)
    try:
        marker = read_marker(home)
        if marker is None:
            return False
        if not _try_lock(descriptor):
            raise AtlasError(f"an offline import (atlas ingest --offline, pid {marker.ingest_pid}) is running on "
                             f"{home}; nothing to discard")
        stop_orphan_importers(home, marker)
        _delete_store(home)
        marker_path(home).unlink()
        return True
    finally:
        os.close(descriptor)


def refuse_start(home: Path) -> None:
    """Raise instead of starting the server while an offline import runs or after one was interrupted (the
    orphan importer, if any, is stopped first)."""
    marker = read_marker(home)
    if marker is None:
        return
    if import_running(home):
        raise AtlasError(f"an offline import (atlas ingest --offline, pid {marker.ingest_pid}) is replacing database "
                         f"'{DATABASE}' in {home}; it starts the server when it is done")
    stopped = stop_orphan_importers(home, marker)
    orphan = f"; its importer (pid {', '.join(map(str, stopped))}) was stopped" if stopped else ""
    raise AtlasError(f"an offline import was interrupted{orphan}, so database '{DATABASE}' in {home} is incomplete "
                     f"and stays offline: rerun `atlas ingest --offline {shlex.join(marker.runs)}`, or start with it "
                     "empty: `atlas db start --discard-interrupted-import`")


class OfflineImportClaim:
    """Held by one offline import from its start to its end (a context manager); see the module docstring."""

    def __init__(self, home: Path, runs: list[str]):
        self.home = home
        self.runs = runs
        self.interrupted: Marker | None = None  # the marker of an earlier import that did not finish
        self._descriptor: int | None = None

    def __enter__(self) -> OfflineImportClaim:
        self._descriptor = _open_lock(self.home)
        if not _try_lock(self._descriptor):
            os.close(self._descriptor)
            marker = read_marker(self.home)
            holder = f" (pid {marker.ingest_pid})" if marker else ""
            raise AtlasError(f"another offline import{holder} is running on {self.home}; wait until it ends")
        self.interrupted = read_marker(self.home)
        if self.interrupted is not None:
            stop_orphan_importers(self.home, self.interrupted)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def begin(self) -> None:
        """Mark the database as being replaced: from now until :meth:`finish` the server must not serve it."""
        _write_marker(self.home, Marker(self.runs, os.getpid()))

    def run_importer(self, start: Callable[[IO[bytes]], subprocess.Popen], log: Path, timeout: float = 3600) -> int:
        """Run the importer that ``start(output)`` launches in its own process group, record its pid in the marker
        and wait for it; if this process is interrupted meanwhile, the importer is killed too."""
        with log.open("wb") as output:
            process = start(output)
        try:
            _write_marker(self.home, Marker(self.runs, os.getpid(), process.pid))
            return process.wait(timeout=timeout)
        except BaseException:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise

    def replace(self, arguments: list[str], log: Path, what: str) -> tuple[float, float, float]:
        """Stop the server, run ``neo4j-admin`` with ``arguments`` as this claim's importer, start the server again;
        return the seconds of the stop, the importer and the start. When the importer fails the database is left
        empty and an AtlasError quotes its last error line."""
        from atlas.db import server

        config = server.ServerConfig.from_env()
        started = time.perf_counter()
        self.begin()
        server.stop(config)
        stopped = time.perf_counter()
        returncode = self.run_importer(lambda output: server.start_admin(config, *arguments, output=output), log)
        imported = time.perf_counter()
        if returncode != 0:
            self.discard()
            server.start(config)
            lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
            errors = [line for line in lines if "rror" in line or "Exception" in line] or lines or ["no output"]
            raise AtlasError(f"{what} failed: {errors[-1]} (log {log}); database '{DATABASE}' is empty now")
        self.finish()
        server.start(config)
        return stopped - started, imported - stopped, time.perf_counter() - imported

    def finish(self) -> None:
        """The import is complete: the server may serve the database again."""
        marker_path(self.home).unlink(missing_ok=True)

    def discard(self) -> None:
        """The import failed: delete the half-written database (the server then starts it empty) and the marker."""
        _delete_store(self.home)
        self.finish()
