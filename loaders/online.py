"""The online edge loader: a validated run into a live Neo4j (managed server, any NEO4J_URI, a cluster) over Bolt.

Exactly once per shard: the Run node lists the shards whose edges are all in the graph, and the shard's last batch
of edges commits in the same transaction that adds it to that list. Before a shard's first batch the Run node
records it as ``loading_shard``; a load that stops half-way leaves that mark, and the next load deletes the edges
of exactly that shard (by their keys) before writing it again. Each batch also advances ``loading_offset`` and
only writes when the offset is where it expects, so a transaction retried after a commit whose answer was lost
(a dropped connection, a cluster leader change) writes nothing twice. A rerun after success writes nothing.

Readers never see part of a shard (the visibility fence): every edge carries its shard's key
(``loaders.schema.shard_key``), and a shard's key joins the Run node's ``visible`` list in a transaction of its own
that starts only after the shard's last batch committed. Neo4j reads are read-committed, and a query running while
a commit is applied can see part of it; the library queries and the GDS projections read ``visible`` first and
count only edges of shards in it, so each answer shows every shard wholly or not at all. Deleting a run first
empties ``visible`` (status ``deleting``), then removes the edges.

Every statement is a managed write transaction (retried on transient errors, routed to the leader on a cluster),
except the batched delete of a run, which must auto-commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
    ValidatedRun,
    check_identity,
    edge_columns,
    edge_rows,
    feature_rows,
    final_status,
    run_properties,
    validate_run,
)
from loaders.schema import apply_schema, shard_key

# Measured on this 2-core machine (benchmarks/bench_ingest.py): 10k-20k edges per transaction is the plateau;
# larger batches only grow the server's transaction state.
DEFAULT_BATCH_SIZE = 10_000
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
    recovered_shard: str | None = None
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


def merge_features(graph: Graph, rows: list[dict[str, Any]], batch_size: int = FEATURE_BATCH_SIZE) -> None:
    """MERGE Feature nodes by uid in batches; properties are set only on creation."""
    for start in range(0, len(rows), batch_size):
        graph.write(_statement("ingest_features"), features=rows[start:start + batch_size])


def _remove_interrupted_shard(graph: Graph, run: ValidatedRun, state: dict[str, Any], batch_size: int) -> int:
    """Delete the edges a stopped load of ``state['loading_shard']`` wrote; return how many."""
    record = run.shard(state["loading_shard"])
    if record is None or record.sha256 != state.get("loading_sha256"):
        raise AtlasError(f"run {run.run_id}: a load of shard {state['loading_shard']} stopped half-way and "
                         f"{run.run_dir} no longer has that exact shard; delete the run "
                         f"(atlas ingest --delete {run.run_id}) and load it again")
    columns = edge_columns(run.manifest, run.read(record))
    keys = [[source, target] for source, target in zip(columns["source"].tolist(), columns["target"].tolist(),
                                                       strict=True)]
    removed = 0
    for start in range(0, len(keys), batch_size):
        removed += graph.write_transaction(lambda tx, rows=keys[start:start + batch_size]: tx.run(
            _statement("ingest_shard_cleanup"), run=run.run_id, rows=rows).single()["deleted"])
    graph.write(_statement("ingest_run_finish"), run=run.run_id, status="loading")
    return removed


def _publish(graph: Graph, run_id: str, shards: list[str]) -> None:
    """Make the edges of fully committed shards visible to readers (a transaction after theirs)."""
    graph.write(_statement("ingest_publish"), run=run_id, keys=[shard_key(run_id, shard) for shard in shards])


def _load_shard(graph: Graph, run: ValidatedRun, record: ShardRecord, batch_size: int,
                advance: Callable[[int], None]) -> None:
    """Write one shard's edges in batches; the last batch also marks the shard loaded (one transaction)."""
    columns = edge_columns(run.manifest, run.read(record))
    rows, key = record.rows, shard_key(run.run_id, record.file)
    graph.write(_statement("ingest_shard_begin"), run=run.run_id, shard=record.file, sha256=record.sha256)
    for start in range(0, rows, batch_size):
        stop = min(rows, start + batch_size)
        batch = edge_rows(columns, start, stop)
        last = stop == rows

        def work(tx: ManagedTransaction, batch: list[list[Any]] = batch, start: int = start, last: bool = last) -> None:
            tx.run(_statement("ingest_edges"), run=run.run_id, shard=record.file, key=key, offset=start,
                   rows=batch).consume()
            if last:
                tx.run(_statement("ingest_shard_finish"), run=run.run_id, shard=record.file,
                       sha256=record.sha256, rows=rows).consume()

        graph.write_transaction(work)
        advance(stop - start)
    if record.file not in ((run_state(graph, run.run_id) or {}).get("shards") or []):
        raise AtlasError(f"run {run.run_id}: shard {record.file} was written but not recorded as loaded; is another "
                         "`atlas ingest` loading this run? Run it again alone to recover")
    _publish(graph, run.run_id, [record.file])


def _check_loadable(run: ValidatedRun, state: dict[str, Any]) -> None:
    """Refuse a run that is half-deleted, or whose Run node describes another run or other shards."""
    if state.get("status") == "deleting":
        raise AtlasError(f"run {run.run_id} is being deleted (an earlier `atlas ingest --delete` stopped); finish "
                         f"it with `atlas ingest --delete {run.run_id}`, then load the run again")
    check_identity(run, state)


def _settled(run: ValidatedRun, state: dict[str, Any]) -> bool:
    """Whether every complete shard is loaded and visible, no load stopped half-way and the status is final."""
    loaded, visible = state.get("shards") or [], state.get("visible") or []
    return (all(record.file in loaded for record in run.shards) and not state.get("loading_shard")
            and all(shard_key(run.run_id, shard) in visible for shard in loaded)
            and state.get("status") == final_status(run, loaded))


def ingest_run(
    graph: Graph,
    run: ValidatedRun | str | Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> IngestReport:
    """Load a run's complete shards that are not in the graph yet, exactly once each, and return what happened.

    ``run`` is a run directory (validated here, before anything is written) or a :class:`ValidatedRun`. A rerun
    after success writes nothing; writing holds the run's load lock (loaders.lock), so a second writer of the same
    run is refused instead of racing this one.
    """
    if batch_size < 1:
        raise AtlasError(f"batch size must be at least 1, got {batch_size}")
    started = time.perf_counter()
    run = run if isinstance(run, ValidatedRun) else validate_run(run)
    apply_schema(graph)  # MERGE of features and runs relies on the uniqueness constraints
    report = IngestReport(run.run_id, status="", shards_incomplete=[record.file for record in run.incomplete])
    state = run_state(graph, run.run_id) or {}
    _check_loadable(run, state)
    if _settled(run, state):  # everything is in: a rerun writes nothing
        report.shards_already_loaded = [record.file for record in run.shards]
        report.status = state["status"]
    else:
        with load_lock(graph, run.run_id, "ingest"):
            _load(graph, run, report, batch_size, progress)
    report.seconds = time.perf_counter() - started
    return report


def _load(graph: Graph, run: ValidatedRun, report: IngestReport, batch_size: int, progress: Progress | None) -> None:
    """The writing part of :func:`ingest_run`, under the run's load lock (the state is read again under it)."""
    state = run_state(graph, run.run_id) or {}
    _check_loadable(run, state)
    loaded = list(state.get("shards") or [])
    report.shards_already_loaded = [record.file for record in run.shards if record.file in loaded]
    pending = [record for record in run.shards if record.file not in loaded]
    hidden = [shard for shard in loaded if shard_key(run.run_id, shard) not in (state.get("visible") or [])]
    if hidden:  # a load stopped between a shard's last batch and its publication
        _publish(graph, run.run_id, hidden)
    graph.write(_statement("ingest_run_begin"), run=run.run_id, properties=run_properties(run.manifest))
    if state.get("loading_shard"):
        report.recovered_shard = state["loading_shard"]
        report.edges_removed_in_recovery = _remove_interrupted_shard(graph, run, state, batch_size)
    merge_features(graph, feature_rows(run))
    total, written = sum(record.rows for record in pending), 0

    def advance(count: int) -> None:
        nonlocal written
        written += count
        if progress is not None:
            progress(written, total)

    for record in pending:
        _load_shard(graph, run, record, batch_size, advance)
        report.shards_loaded.append(record.file)
    report.edges_written = written
    report.status = final_status(run, loaded + report.shards_loaded)
    graph.write(_statement("ingest_run_finish"), run=run.run_id, status=report.status)


@dataclass
class DeleteReport:
    """What deleting a run removed."""

    run_id: str
    edges_deleted: int
    run_deleted: bool


def delete_run(graph: Graph, run_id: str, batch_size: int = DEFAULT_BATCH_SIZE) -> DeleteReport:
    """Remove exactly one run's AFFECTS edges (batched, own transactions) and its Run node; nothing else.

    The run's edges are hidden from readers first, so a reader sees the whole run or none of it.
    """
    edges = graph.read(_statement("run_edge_count"), run=run_id)[0]["edges"]
    if not edges and run_state(graph, run_id) is None:
        raise AtlasError(f"no run {run_id!r} in the graph (nothing to delete)")
    with load_lock(graph, run_id, "delete"):
        graph.write(_statement("delete_run_hide"), run=run_id)
        graph.autocommit(_statement("delete_run_edges"), run=run_id, batch=batch_size)
        deleted = graph.write_transaction(
            lambda tx: tx.run(_statement("delete_run_node"), run=run_id).single()["deleted"])
    return DeleteReport(run_id, edges, bool(deleted))
