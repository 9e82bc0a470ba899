"""Crash consistency of `atlas ingest`: SIGKILL at many points, rerun, and the graph equals an uninterrupted load.

Each point is found from outside the process (its progress output on stderr, the Run node, the edge count), with
one run already in the graph so that a crash of one run's load is also shown to leave the other run alone.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from atlas.db import server
from atlas.db.connection import Graph
from atlas.db.offline_import import discard_interrupted, importer_pids, read_marker
from atlas.runformat import read_manifest
from loaders.lock import load_lock
from loaders.online import IngestReport, ingest_run, run_state, shard_marks
from loaders.schema import AFFECTS
from tests.cli import run_atlas
from tests.conftest import wipe
from tests.reliability.checksum import GraphChecksum, graph_checksum
from tests.reliability.conftest import affects_count, loaded_shards
from tests.reliability.processes import error_lines, kill_when
from tests.test_loaders_offline import fresh_driver

pytestmark = pytest.mark.neo4j
BATCH = 50  # shards of 87-1,791 edges take several transactions each, so "mid-shard" and "within the last" exist


def _prepare(graph: Graph, small_run: Path) -> int:
    """Empty graph plus the small run; returns its edge count."""
    wipe(graph)
    return ingest_run(graph, small_run).edges_written


@pytest.fixture(scope="module")
def reference(graph: Graph, small_run: Path, crash_run: Path) -> GraphChecksum:
    """The graph after uninterrupted loads of the small run and then the crash run (through the CLI)."""
    _prepare(graph, small_run)
    result = run_atlas("ingest", crash_run, "--batch-size", BATCH, "--quiet")
    assert result.returncode == 0, result.stderr
    return graph_checksum(graph)


def _rerun_matches(graph: Graph, crash_run: Path, reference: GraphChecksum) -> IngestReport:
    """Rerun the load (in this process: only the killed load has to be a real subprocess) and compare graphs."""
    report = ingest_run(graph, crash_run, batch_size=BATCH)
    assert report.status == "loaded"
    assert shard_marks(graph, report.run_id) == {}
    assert graph_checksum(graph) == reference
    return report


def _edges_of_crash_run(graph: Graph, base: int) -> int:
    return affects_count(graph) - base


def _points(crash_run: Path) -> dict[str, Callable[[Graph, int], Callable[[str], object]]]:
    manifest = read_manifest(crash_run)
    run_id, total = manifest.run_id, sum(record.rows for record in manifest.shards)
    n_shards, last_rows = len(manifest.shards), manifest.shards[-1].rows
    second, last = manifest.shards[1].file, manifest.shards[-1].file

    def loading(shard: str):
        return lambda graph, base: lambda _: shard in shard_marks(graph, run_id)

    def edges_at_least(fraction: float):
        return lambda graph, base: lambda _: _edges_of_crash_run(graph, base) >= fraction * total

    def shards_at_least(count: int):
        return lambda graph, base: lambda _: len(loaded_shards(graph, run_id) or []) >= count

    return {
        "validating": lambda graph, base: lambda stderr: "validate" in stderr,
        "run node written, no edge yet": lambda graph, base: lambda _: (
            run_state(graph, run_id) is not None and _edges_of_crash_run(graph, base) == 0),
        "a shard loaded, another half-written": lambda graph, base: lambda _: (
            loaded_shards(graph, run_id) and any(shard_marks(graph, run_id).values())),
        "between the first and second shard": shards_at_least(1),
        "a quarter of the edges": edges_at_least(0.25),
        "half of the shards": shards_at_least(n_shards // 2),
        "mid-shard at 70 %": edges_at_least(0.7),
        "second shard marked as loading": loading(second),
        "last shard marked as loading": loading(last),
        "within the last shard": lambda graph, base: lambda _: (
            _edges_of_crash_run(graph, base) > total - last_rows),
    }


POINTS = ["validating", "run node written, no edge yet", "a shard loaded, another half-written",
          "between the first and second shard", "second shard marked as loading", "a quarter of the edges",
          "half of the shards", "mid-shard at 70 %", "last shard marked as loading", "within the last shard"]


@pytest.mark.parametrize("point", POINTS)
def test_killed_ingest_reruns_to_the_uninterrupted_graph(point, graph, small_run, crash_run, reference):
    base = _prepare(graph, small_run)
    condition = _points(crash_run)[point](graph, base)
    crash = kill_when(["ingest", crash_run, "--batch-size", BATCH], condition)
    assert crash.killed, f"the load finished before the kill point {point!r}: {crash.stderr[-300:]}"
    if point == "validating":
        assert run_state(graph, read_manifest(crash_run).run_id) is None  # nothing written while validating
    state = run_state(graph, read_manifest(crash_run).run_id) or {}
    assert state.get("status") != "loaded"  # the kill really left the load unfinished
    _rerun_matches(graph, crash_run, reference)


def test_two_crashes_in_a_row_then_a_rerun_give_the_uninterrupted_graph(graph, small_run, crash_run, reference):
    base = _prepare(graph, small_run)
    total = read_manifest(crash_run).counts["edges"]
    for fraction in (0.2, 0.6):
        crash = kill_when(["ingest", crash_run, "--batch-size", BATCH],
                          lambda _, fraction=fraction: _edges_of_crash_run(graph, base) >= fraction * total)
        assert crash.killed
    report = _rerun_matches(graph, crash_run, reference)
    assert report.edges_written > 0


def test_a_killed_run_deletion_completes_on_rerun_and_the_run_loads_again(graph, small_run, crash_run, reference):
    base = _prepare(graph, small_run)
    run_id = read_manifest(crash_run).run_id
    ingest_run(graph, crash_run)
    total = _edges_of_crash_run(graph, base)
    crash = kill_when(["ingest", "--delete", run_id, "--batch-size", BATCH],
                      lambda _: 0 < _edges_of_crash_run(graph, base) < total)
    assert crash.killed
    assert run_state(graph, run_id) is not None  # the Run node goes last, so a rerun finds the run
    result = run_atlas("ingest", "--delete", run_id, "--json")
    assert result.returncode == 0, result.stderr
    assert _edges_of_crash_run(graph, base) == 0 and run_state(graph, run_id) is None
    assert affects_count(graph) == base  # the other run's edges are untouched
    _rerun_matches(graph, crash_run, reference)


@pytest.mark.slow
def test_an_offline_import_killed_while_writing_its_files_reruns_to_the_online_graph(graph, small_run, crash_run,
                                                                                      reference):
    config = server.ServerConfig.from_env()
    if os.environ.get("NEO4J_URI") or not server.running_pid(config):
        pytest.skip("the offline import needs the managed server")
    wipe(graph)
    bulk = config.home / "import" / "bulk"
    shutil.rmtree(bulk, ignore_errors=True)
    crash = kill_when(["ingest", "--offline", small_run, crash_run],
                      lambda _: (bulk / f"{AFFECTS.type}.header.csv").exists())
    assert crash.killed, crash.stderr[-300:]
    if server.running_pid(config) is not None:  # killed before the import stopped the server: nothing changed
        assert graph.read("MATCH (n) RETURN count(n) AS nodes")[0]["nodes"] == 0
    result = run_atlas("ingest", "--offline", small_run, crash_run, "--quiet", timeout=900)
    fresh_driver(graph)  # the session's driver holds bookmarks of the database the import replaced
    assert result.returncode == 0, result.stderr
    assert graph_checksum(graph) == reference


@pytest.fixture
def managed(graph: Graph) -> server.ServerConfig:
    """The managed server's config (skip otherwise); afterwards no interrupted import is left and the server runs."""
    config = server.ServerConfig.from_env()
    if os.environ.get("NEO4J_URI") or not server.running_pid(config):
        pytest.skip("the offline import needs the managed server")
    yield config
    discard_interrupted(config.home)
    server.start(config)
    fresh_driver(graph)


def _kill_while_neo4j_admin_imports(graph: Graph, config: server.ServerConfig, *runs: Path) -> None:
    """SIGKILL `atlas ingest --offline` once its neo4j-admin child is importing, and check what that leaves."""
    wipe(graph)
    log = config.home / "import" / "bulk" / "neo4j-admin.log"
    log.unlink(missing_ok=True)
    crash = kill_when(["ingest", "--offline", *runs], lambda _: (
        log.exists() and "Importing the contents" in log.read_text(errors="replace") and importer_pids(config.home)))
    assert crash.killed, crash.stderr[-300:]
    assert importer_pids(config.home)  # the importer outlived the ingest: whoever comes next must not race it
    assert server.running_pid(config) is None and read_marker(config.home) is not None


@pytest.mark.slow
def test_an_offline_import_killed_while_neo4j_admin_imports_reruns_to_the_online_graph(graph, small_run, crash_run,
                                                                                        reference, managed):
    _kill_while_neo4j_admin_imports(graph, managed, small_run, crash_run)
    result = run_atlas("ingest", "--offline", small_run, crash_run, "--quiet", timeout=900)
    fresh_driver(graph)
    assert result.returncode == 0, result.stderr
    assert importer_pids(managed.home) == [] and read_marker(managed.home) is None
    assert graph_checksum(graph) == reference


@pytest.mark.slow
def test_db_start_after_an_offline_import_killed_in_neo4j_admin_stops_the_orphan_and_refuses_in_one_line(
        graph, small_run, crash_run, managed):
    _kill_while_neo4j_admin_imports(graph, managed, small_run, crash_run)
    result = run_atlas("db", "start")
    assert result.returncode == 1 and len(error_lines(result.stderr)) == 1, result.stderr
    assert "interrupted" in result.stderr and f"atlas ingest --offline {small_run} {crash_run}" in result.stderr
    assert importer_pids(managed.home) == [] and server.running_pid(managed) is None
    assert run_atlas("db", "start").returncode == 1  # still refused: the half-written store is never served

    result = run_atlas("db", "start", "--discard-interrupted-import")
    assert result.returncode == 0, result.stderr
    fresh_driver(graph)
    assert read_marker(managed.home) is None and graph_checksum(graph).nodes == {}


LOCK = "MATCH (lock:LoadLock {run: $run}) RETURN properties(lock) AS lock"


def _lock_of(graph: Graph, run_id: str) -> dict | None:
    rows = graph.read(LOCK, run=run_id)
    return rows[0]["lock"] if rows else None


def test_a_second_writer_of_a_run_is_refused_while_the_first_holds_it(graph, small_run, crash_run, reference):
    _prepare(graph, small_run)
    before = graph_checksum(graph)
    run_id = read_manifest(crash_run).run_id
    with load_lock(graph, run_id, "ingest"):  # a live writer of the crash run: this test process
        loader = run_atlas("ingest", crash_run, "--batch-size", BATCH)
    with load_lock(graph, "reliability-small", "ingest"):
        deleter = run_atlas("ingest", "--delete", "reliability-small")
    for refused, locked in ((loader, run_id), (deleter, "reliability-small")):
        assert refused.returncode == 1
        [line] = error_lines(refused.stderr)
        assert line.startswith(f"error: run {locked} is locked by another writer (ingest, pid {os.getpid()} on ")
        assert f"atlas ingest --unlock {locked}" in line
    assert _lock_of(graph, run_id) is None  # released when the holder's block ended
    assert graph_checksum(graph) == before


def test_the_lock_of_a_killed_writer_on_this_host_is_taken_over(graph, small_run, crash_run, reference):
    base = _prepare(graph, small_run)
    run_id = read_manifest(crash_run).run_id
    crash = kill_when(["ingest", crash_run, "--batch-size", BATCH],
                      lambda _: _edges_of_crash_run(graph, base) >= 1000)
    assert crash.killed
    left = _lock_of(graph, run_id)
    assert left is not None and left["operation"] == "ingest" and left["pid"] != os.getpid()
    _rerun_matches(graph, crash_run, reference)
    assert _lock_of(graph, run_id) is None


def test_a_lock_from_another_host_holds_until_unlocked(graph, small_run, crash_run, reference):
    _prepare(graph, small_run)
    run_id = read_manifest(crash_run).run_id
    graph.write("CREATE (:LoadLock {run: $run, holder: 'elsewhere-1', host: 'another-machine', pid: 1, "
                "operation: 'ingest', since: '2026-01-01T00:00:00Z'})", run=run_id)
    refused = run_atlas("ingest", crash_run, "--batch-size", BATCH)
    assert refused.returncode == 1 and "pid 1 on another-machine" in error_lines(refused.stderr)[0]
    unlocked = run_atlas("ingest", "--unlock", run_id, "--json")
    assert unlocked.returncode == 0, unlocked.stderr
    assert json.loads(unlocked.stdout) == {"run_id": run_id, "lock_removed": True}
    _rerun_matches(graph, crash_run, reference)
