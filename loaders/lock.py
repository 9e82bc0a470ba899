"""One writer per run: the load lock that `atlas ingest` and `atlas ingest --delete` hold while they write a run.

Two loads of the same run at once would defeat exactly-once (each would take the other's half-written shard for
an interrupted one, delete its edges and write them again). The lock is a ``LoadLock`` node MERGEd on the run id
under a uniqueness constraint, so of two writers that start together exactly one creates it; the other is refused
in one line naming the holder. A holder killed with SIGKILL cannot release its lock: a later writer on the same
host takes over a lock whose process is gone; a lock left by a process on another machine is removed with
``atlas ingest --unlock RUN_ID`` once the user knows that process is gone.
"""

from __future__ import annotations

import os
import secrets
import shlex
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import queries
from atlas.db.connection import Graph
from atlas.errors import AtlasError
from atlas.processes import process_alive


def _acquire(graph: Graph, run_id: str, holder: str, operation: str) -> dict[str, Any]:
    return graph.write_transaction(lambda tx: tx.run(
        queries.internal("load_lock_acquire").text, run=run_id, holder=holder, host=socket.gethostname(),
        pid=os.getpid(), operation=operation).single()["lock"])


def _release(graph: Graph, run_id: str, holder: str) -> int:
    return graph.write_transaction(lambda tx: tx.run(
        queries.internal("load_lock_release").text, run=run_id, holder=holder).single()["released"])


def _abandoned(lock: dict[str, Any]) -> bool:
    """Whether the lock's holder was a process on this host that no longer exists."""
    return lock.get("host") == socket.gethostname() and not process_alive(int(lock["pid"]))


@contextmanager
def load_lock(graph: Graph, run_id: str, operation: str) -> Iterator[None]:
    """Hold the run's load lock for the block (``operation`` says what for, e.g. 'ingest'); refuse if taken."""
    holder = secrets.token_hex(8)
    lock = _acquire(graph, run_id, holder, operation)
    if lock["holder"] != holder and _abandoned(lock):
        _release(graph, run_id, lock["holder"])
        lock = _acquire(graph, run_id, holder, operation)
    if lock["holder"] != holder:
        raise AtlasError(f"run {run_id} is locked by another writer ({lock.get('operation')}, pid {lock.get('pid')} "
                         f"on {lock.get('host')} since {lock.get('since')}); wait for it to finish, or, if that "
                         f"process is gone, remove the lock with `atlas ingest --unlock {shlex.quote(run_id)}`")
    try:
        yield
    finally:
        _release(graph, run_id, holder)


def unlock(graph: Graph, run_id: str) -> bool:
    """Remove a run's load lock whatever its holder (the user says that process is gone); whether there was one."""
    return bool(graph.write_transaction(lambda tx: tx.run(
        queries.internal("load_lock_break").text, run=run_id).single()["released"]))
