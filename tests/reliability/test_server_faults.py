"""Server faults, from the CLI as a user runs it: Neo4j stopped in the middle of an online load, an unreachable
server, a wrong password and a missing database. Each is one clear line on stderr and a non-zero exit; after a
restart the interrupted load reruns to exactly the graph of an uninterrupted one."""

from __future__ import annotations

import secrets
import socket
import time

import pytest

from atlas.db import server
from loaders.online import ingest_run, shard_marks
from tests.cli import atlas_env, run_atlas
from tests.conftest import wipe
from tests.reliability.checksum import graph_checksum
from tests.reliability.conftest import affects_count
from tests.reliability.processes import error_lines, kill_when

pytestmark = pytest.mark.neo4j


def _one_error_line(returncode: int, stderr: str, fragment: str) -> str:
    lines = error_lines(stderr)
    assert returncode not in (0, None) and returncode > 0, stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in stderr, stderr
    assert fragment in lines[0], lines[0]
    return lines[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server_is_one_line(small_run):
    env = atlas_env(NEO4J_URI=f"bolt://127.0.0.1:{_free_port()}", NEO4J_PASSWORD=secrets.token_hex(8))
    result = run_atlas("ingest", small_run, "--quiet", env=env)
    _one_error_line(result.returncode, result.stderr, "cannot reach Neo4j")


def test_a_wrong_password_is_one_line(graph, small_run):
    env = atlas_env(NEO4J_URI=graph.settings.uri, NEO4J_USER="neo4j", NEO4J_PASSWORD=secrets.token_hex(12))
    result = run_atlas("ingest", small_run, "--quiet", env=env)
    _one_error_line(result.returncode, result.stderr, "refused the credentials")


def test_a_missing_database_is_one_line(graph, small_run):
    before = graph_checksum(graph)
    result = run_atlas("ingest", small_run, "--quiet", env=atlas_env(NEO4J_DATABASE="nosuchdatabase"))
    _one_error_line(result.returncode, result.stderr, "database 'nosuchdatabase' does not exist")
    cypher = run_atlas("cypher", "RETURN 1 AS one", env=atlas_env(NEO4J_DATABASE="nosuchdatabase"))
    _one_error_line(cypher.returncode, cypher.stderr, "does not exist")
    assert graph_checksum(graph) == before


@pytest.mark.slow
def test_neo4j_stopped_during_a_load_is_one_line_and_a_rerun_after_restart_is_identical(graph, small_run,
                                                                                         crash_run):
    if not server.running_pid(server.ServerConfig.from_env()):
        pytest.skip("needs the managed server (it is stopped and started again)")
    wipe(graph)
    ingest_run(graph, small_run)
    ingest_run(graph, crash_run)
    reference = graph_checksum(graph)
    wipe(graph)
    base = ingest_run(graph, small_run).edges_written
    stopped = []

    def stop_mid_load(_: str) -> bool:
        if not stopped and affects_count(graph) > base:
            stopped.append(time.monotonic())
            server.stop()
        return False  # never kill: the loader has to notice by itself

    load = kill_when(["ingest", crash_run, "--batch-size", 100], stop_mid_load, timeout=300, poll=0.02)
    seconds_to_fail = time.monotonic() - stopped[0] if stopped else None
    try:
        assert stopped, "the load finished before the server could be stopped"
        line = _one_error_line(load.returncode, load.stderr, "Neo4j")
        print(f"loader failed {seconds_to_fail:.1f}s after the stop with: {line}")
    finally:
        server.start(progress=lambda message: None)
    report = ingest_run(graph, crash_run, batch_size=100)
    assert report.status == "loaded" and shard_marks(graph, report.run_id) == {}
    assert graph_checksum(graph) == reference
