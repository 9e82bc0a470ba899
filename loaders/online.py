"""The online edge loader: a validated run into a live Neo4j (managed server, any NEO4J_URI, a cluster) over Bolt.

Exactly once per shard: the Run node lists the shards whose edges are all in the graph, and the shard's last batch
of edges commits in the same transaction that adds it to that list. Before a shard's first batch a ShardLoad node
marks it as being written; a load that stops half-way leaves the marks of the shards it was writing, and the next
load deletes the edges of exactly those shards (by their keys) before writing them again. Each batch also advances
its mark's offset and only writes when the offset is where it expects, so a transaction retried after a commit
whose answer was lost (a dropped connection, a cluster leader change) writes nothing twice. A rerun after success
writes nothing. Every statement is a managed write transaction (retried on transient errors, routed to the leader
on a cluster), except the batched delete of a run, which must auto-commit. One writer per run: loading and deleting
hold the run's load lock (loaders.lock).

Readers never see part of a shard (the visibility fence): every edge carries its shard's key
(``loaders.schema.shard_key``), and a shard's key joins the Run node's ``visible`` list in a transaction of its own
that starts only after the shard's last batch committed. Neo4j reads are read-committed, and a query running while
a commit is applied can see part of it; the library queries and the GDS projections read ``visible`` first and
count only edges of shards in it, so each answer shows every shard wholly or not at all. Deleting a run first
empties ``visible`` (status ``deleting``), then removes the edges.

Speed (benchmarks/bench_ingest.py): edges name their features by elementId, looked up once per load, instead of
two unique-index seeks (which also take locks) per edge; a batch's parameters are parallel columns. The rest of
the server's work per edge is mostly the commit (record and index updates). ``streams`` > 1 loads several shards
concurrently (shards have disjoint source features and one mark each, so the streams share no bookkeeping lock
but the Run node's, taken once per shard; a profile showed no lock waits at the target features they share, and a
deadlock would be a transient error, retried). Two streams are the default: on the quiet 2-core machine one batch
executes while another commits; on a machine whose cores are already busy they gain nothing.
"""

from __future__ import annotations

import shlex
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neo4j import ManagedTransaction

import queries
from atlas.db.connection import Graph
from atlas.errors import AtlasError
from atlas.runformat import ShardRecord
from loaders.lock import load_lock
from loaders.runs import (
    STATISTICS,
    ValidatedRun,
    check_identity,
    edge_columns,
    feature_rows,
    final_status,
    run_properties,
    validate_run,
)
from loaders.schema import apply_schema, shard_key

# Edges per write transaction: the plateau of the batch-size sweep; larger batches only grow the server's
# transaction state (benchmarks/README.md, "Online loader").
DEFAULT_BATCH_SIZE = 10_000
# Shards in flight at once: two overlap one stream's client work with the other's server work on a quiet machine;
# on a busy one they gain nothing, hence --streams 1 (benchmarks/README.md).
DEFAULT_STREAMS = 2
FEATURE_BATCH_SIZE = 5_000
Progress = Callable[[int, int], None]  # (edges written so far, edges to write in all)


@dataclass
class IngestReport:
    """What one `atlas ingest` of a run did."""

    run_id: str
    status: str
    shards_loaded: list[str] = field(default_factory=list)
    shards_already_loaded: list[str] = field(default_factory=list)
    shards_incomplete: list[str] = field(default_factory=list)
    recovered_shards: list[str] = field(default_factory=list)
    edges_removed_in_recovery: int = 0
    edges_written: int = 0
    seconds: float = 0.0

    @property
    def edges_per_second(self) -> float:
        return self.edges_written / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {**vars(self), "edges_per_second": round(self.edges_per_second, 1)}


def _statement(name: str) -> str:
    return queries.internal(name).text


def run_state(graph: Graph, run_id: str) -> dict[str, Any] | None:
    """The Run node's properties as the loaders left them, or None when the run is not in the graph."""
    return graph.read(_statement("ingest_run_state"), run=run_id)[0]["run"]


def shard_marks(graph: Graph, run_id: str) -> dict[str, int]:
    """The shards of a run whose load started and did not finish, with the rows of each already committed."""
    return _offsets(graph.read(_statement("ingest_shard_marks"), run=run_id))


def _offsets(marks: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    return {mark["shard"]: mark["offset"] for mark in marks}


def _mark_id(run_id: str, shard: str) -> str:
    return f"{run_id}/{shard}"  # shard files are plain names, so no two (run, shard) pairs share an id


def merge_features(graph: Graph, rows: list[dict[str, Any]], batch_size: int = FEATURE_BATCH_SIZE) -> None:
    """MERGE Feature nodes by uid in batches; properties are set only on creation."""
    for start in range(0, len(rows), batch_size):
        graph.write(_statement("ingest_features"), features=rows[start:start + batch_size])


def feature_ids(graph: Graph, uids: list[str], batch_size: int = FEATURE_BATCH_SIZE) -> dict[str, str]:
    """uid -> elementId of existing Feature nodes."""
    ids = {}
    for start in range(0, len(uids), batch_size):
        rows = graph.read(_statement("ingest_feature_ids"), uids=uids[start:start + batch_size])
        ids.update((row["uid"], row["id"]) for row in rows)
    return ids


def _remove_interrupted_shard(graph: Graph, run_id: str, mark: dict[str, Any], batch_size: int) -> int:
    """Delete the edges a stopped load of ``mark['shard']`` wrote (by their shard key), then its mark; return how
    many edges. The shard file is not needed: it may even have changed since, and is then loaded anew."""
    counters = graph.autocommit(_statement("ingest_shard_cleanup"), key=shard_key(run_id, mark["shard"]),
                                batch=batch_size)
    graph.write(_statement("ingest_shard_unmark"), mark=mark["id"])
    return counters.get("relationships_deleted", 0)


def _publish(graph: Graph, run: ValidatedRun, shards: list[str]) -> None:
    """Make the edges of fully committed shards visible to readers (a transaction after theirs)."""
    graph.write(_statement("ingest_publish"), run=run.run_id, keys=[shard_key(run.run_id, shard) for shard in shards],
                order=[shard_key(run.run_id, record.file) for record in run.shards])


def edge_batch(columns: dict[str, Any], ids: dict[str, str], start: int, stop: int) -> dict[str, list[Any]]:
    """The parameters of ingest_edges.cypher for rows ``start:stop`` of a shard: one list per column (the statement
    derives ``sign`` from ``mean`` itself)."""
    batch = {name: columns[name][start:stop].tolist() for name in STATISTICS}
    for name, values in batch.items():
        if values and values[0] is None and all(value is None for value in values):
            batch[name] = None  # no property on any edge of the batch: one null, not a list of them
    batch["source"] = [ids[uid] for uid in columns["source"][start:stop].tolist()]
    batch["target"] = [ids[uid] for uid in columns["target"][start:stop].tolist()]
    return batch


def _batches(run: ValidatedRun, record: ShardRecord, ids: dict[str, str], batch_size: int
             ) -> Iterator[tuple[int, dict[str, list[Any]]]]:
    columns = edge_columns(run.manifest, run.read(record))
    for start in range(0, record.rows, batch_size):
        yield start, edge_batch(columns, ids, start, min(record.rows, start + batch_size))


def _load_shard(graph: Graph, run: ValidatedRun, record: ShardRecord, ids: dict[str, str], batch_size: int,
                advance: Callable[[int], None], stop: threading.Event) -> None:
    """Write one shard's edges in batches; the last batch also marks the shard loaded (one transaction)."""
    mark, key = _mark_id(run.run_id, record.file), shard_key(run.run_id, record.file)
    order = [shard.file for shard in run.shards]
    checksums = [shard.sha256 for shard in run.shards]
    graph.write(_statement("ingest_shard_begin"), mark=mark, run=run.run_id, shard=record.file)
    if record.rows == 0:  # no batch to carry the finish: an empty shard is loaded by its mark alone
        graph.write(_statement("ingest_shard_finish"), run=run.run_id, mark=mark, shard=record.file, rows=0,
                    order=order, checksums=checksums)
    for start, batch in _batches(run, record, ids, batch_size):
        if stop.is_set():
            return
        size = len(batch["d"])
        last = start + size == record.rows

        def work(tx: ManagedTransaction, batch: dict[str, list[Any]] = batch, start: int = start,
                 size: int = size, last: bool = last) -> None:
            answer = tx.run(_statement("ingest_edges"), mark=mark, offset=start, run=run.run_id, key=key,
                            **batch).single()
            if answer is None:  # the fence turned the batch away
                if _offsets(tx.run(_statement("ingest_shard_marks"), run=run.run_id)).get(
                        record.file, record.rows) >= start + size:
                    return  # a replay of a batch whose commit went through
                raise AtlasError(f"run {run.run_id}: shard {record.file} is being written by another load; is "
                                 "another `atlas ingest` loading this run? Run it again alone to recover")
            if answer["written"] != size:  # raising rolls the batch back
                raise AtlasError(f"run {run.run_id}: feature nodes of shard {record.file} disappeared during the "
                                 "load (deleted meanwhile?); run the load again")
            if last:
                tx.run(_statement("ingest_shard_finish"), run=run.run_id, mark=mark, shard=record.file,
                       rows=record.rows, order=order, checksums=checksums).consume()

        graph.write_transaction(work)
        advance(size)
    if record.file not in ((run_state(graph, run.run_id) or {}).get("shards") or []):
        raise AtlasError(f"run {run.run_id}: shard {record.file} was written but not recorded as loaded; is another "
                         "`atlas ingest` loading this run? Run it again alone to recover")
    _publish(graph, run, [record.file])


def _load_shards(graph: Graph, run: ValidatedRun, pending: list[ShardRecord], ids: dict[str, str],
                 batch_size: int, streams: int, advance: Callable[[int], None]) -> None:
    """Load ``pending`` shards, ``streams`` at a time in manifest order; the first failure stops every stream."""
    queue = iter(pending)
    lock, stop = threading.Lock(), threading.Event()

    def stream() -> None:
        while not stop.is_set():
            with lock:
                record = next(queue, None)
            if record is None:
                return
            _load_shard(graph, run, record, ids, batch_size, advance, stop)

    with ThreadPoolExecutor(max_workers=streams, thread_name_prefix="ingest") as pool:
        futures = [pool.submit(stream) for _ in range(min(streams, len(pending)))]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        finally:
            stop.set()  # also on Ctrl-C in this thread: the other streams stop after their current batch
        for future in futures:
            future.result()


def ingest_run(
    graph: Graph,
    run: ValidatedRun | str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    streams: int = DEFAULT_STREAMS,
    progress: Progress | None = None,
) -> IngestReport:
    """Load a run's complete shards that are not in the graph yet, exactly once each, and return what happened.

    ``run`` is a run directory (validated here, before anything is written) or a :class:`ValidatedRun`.
    ``streams`` shards load concurrently, each in its own transactions. A rerun after success writes nothing;
    writing holds the run's load lock (loaders.lock), so a second writer of the same run is refused instead of
    racing this one.
    """
    if batch_size < 1:
        raise AtlasError(f"batch size must be at least 1, got {batch_size}")
    if streams < 1:
        raise AtlasError(f"streams must be at least 1, got {streams}")
    started = time.perf_counter()
    run = run if isinstance(run, ValidatedRun) else validate_run(run)
    apply_schema(graph)  # MERGE of features and runs relies on the uniqueness constraints
    report = IngestReport(run.run_id, status="", shards_incomplete=[record.file for record in run.incomplete])
    state = run_state(graph, run.run_id) or {}
    _check_loadable(run, state)
    if _settled(run, state, shard_marks(graph, run.run_id)):  # everything is in: a rerun writes nothing
        report.shards_already_loaded = [record.file for record in run.shards]
        report.status = state["status"]
    else:
        with load_lock(graph, run.run_id, "ingest"):
            _load(graph, run, report, batch_size, streams, progress)
    report.seconds = time.perf_counter() - started
    return report


def _check_loadable(run: ValidatedRun, state: dict[str, Any]) -> None:
    """Refuse a run that is half-deleted, or whose Run node describes another run or other shards."""
    if state.get("status") == "deleting":
        raise AtlasError(f"run {run.run_id} is being deleted (an earlier `atlas ingest --delete` stopped); finish "
                         f"it with `atlas ingest --delete {shlex.quote(run.run_id)}`, then load the run again")
    check_identity(run, state)


def _settled(run: ValidatedRun, state: dict[str, Any], marks: dict[str, int]) -> bool:
    """Whether every complete shard is loaded and visible, no load stopped half-way and the status is final."""
    loaded, visible = state.get("shards") or [], state.get("visible") or []
    return (all(record.file in loaded for record in run.shards) and not marks
            and all(shard_key(run.run_id, shard) in visible for shard in loaded)
            and state.get("status") == final_status(run, loaded))


def _load(graph: Graph, run: ValidatedRun, report: IngestReport, batch_size: int, streams: int,
          progress: Progress | None) -> None:
    """The writing part of :func:`ingest_run`, under the run's load lock (the state is read again under it)."""
    state = run_state(graph, run.run_id) or {}
    _check_loadable(run, state)
    marks = graph.read(_statement("ingest_shard_marks"), run=run.run_id)
    loaded = list(state.get("shards") or [])
    report.shards_already_loaded = [record.file for record in run.shards if record.file in loaded]
    pending = [record for record in run.shards if record.file not in loaded]
    hidden = [shard for shard in loaded if shard_key(run.run_id, shard) not in (state.get("visible") or [])]
    if hidden:  # a load stopped between a shard's last batch and its publication
        _publish(graph, run, hidden)
    graph.write(_statement("ingest_run_begin"), run=run.run_id, properties=run_properties(run.manifest))
    for mark in marks:
        report.recovered_shards.append(mark["shard"])
        report.edges_removed_in_recovery += _remove_interrupted_shard(graph, run.run_id, mark, batch_size)
    features = feature_rows(run)
    merge_features(graph, features)
    for start in range(0, len(run.calibration), FEATURE_BATCH_SIZE):
        graph.write(_statement("ingest_feature_calibration"), rows=run.calibration[start:start + FEATURE_BATCH_SIZE])
    ids = feature_ids(graph, [row["uid"] for row in features])
    if len(ids) != len(features):
        raise AtlasError(f"run {run.run_id}: {len(features) - len(ids)} feature nodes disappeared right after they "
                         "were written (deleted meanwhile?); run the load again")
    total, written, lock = sum(record.rows for record in pending), 0, threading.Lock()

    def advance(count: int) -> None:
        nonlocal written
        with lock:
            written += count
            if progress is not None:
                progress(written, total)

    _load_shards(graph, run, pending, ids, batch_size, streams, advance)
    report.shards_loaded = [record.file for record in pending]
    report.edges_written = written
    report.status = final_status(run, loaded + report.shards_loaded)
    graph.write(_statement("ingest_run_finish"), run=run.run_id, status=report.status)


@dataclass
class DeleteReport:
    """What deleting a run removed."""

    run_id: str
    edges_deleted: int
    run_deleted: bool


def run_shard_keys(graph: Graph, run_id: str) -> list[int]:
    """The shard keys of every shard whose edges a load of this run began to write: its loaded shards and those
    with a ShardLoad mark (a shard's mark exists from before its first edge until the transaction of its last
    edge, which lists it among the loaded). Every edge of the run carries one of these keys."""
    shards = set((run_state(graph, run_id) or {}).get("shards") or []) | set(shard_marks(graph, run_id))
    return sorted(shard_key(run_id, shard) for shard in shards)


def delete_run(graph: Graph, run_id: str, batch_size: int = DEFAULT_BATCH_SIZE) -> DeleteReport:
    """Remove exactly one run's AFFECTS edges (batched, own transactions) and its Run node; nothing else.

    The run's edges are hidden from readers first, so a reader sees the whole run or none of it.
    """
    if run_state(graph, run_id) is None:
        raise AtlasError(f"no run {run_id!r} in the graph (nothing to delete)")
    with load_lock(graph, run_id, "delete"):
        keys = run_shard_keys(graph, run_id)  # under the lock: no load begins another shard meanwhile
        edges = graph.read(_statement("run_edge_count"), keys=keys)[0]["edges"]
        graph.write(_statement("delete_run_hide"), run=run_id)
        graph.autocommit(_statement("delete_run_edges"), keys=keys, batch=batch_size)
        deleted = graph.write_transaction(
            lambda tx: tx.run(_statement("delete_run_node"), run=run_id).single()["deleted"])
    return DeleteReport(run_id, edges, bool(deleted))
