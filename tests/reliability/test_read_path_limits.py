"""The read path's limits, from the command line as an analyst meets them: a statement past its timeout or past the
transaction memory limit, a statement nested too deeply for the server, a server that stops answering, an HTTP or
credential-bearing NEO4J_URI, and the lock-out after wrong passwords. Each is one line and a non-zero exit, never a
traceback or a wait without end."""

from __future__ import annotations

import os
import secrets
import signal
import time

import pytest

from atlas.db import server
from atlas.db.server import transaction_memory
from tests.cli import atlas_env, run_atlas
from tests.reliability.processes import error_lines
from tests.test_memory import transaction_memory_hog

pytestmark = pytest.mark.neo4j


def _one_line(done, fragment: str) -> str:
    lines = error_lines(done.stderr)
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and fragment in lines[0], lines[0]
    return lines[0]


def _managed_pid() -> int:
    if os.environ.get("NEO4J_URI"):
        pytest.skip("needs the managed server")
    pid = server.running_pid(server.ServerConfig.from_env())
    assert pid is not None
    return pid


def test_a_statement_past_its_timeout_is_stopped_in_one_line(graph):
    done = run_atlas("cypher", "UNWIND range(1, 10000000000) AS x WITH x WHERE x < 0 RETURN count(x) AS n",
                     "--timeout", "1")
    _one_line(done, "longer than its 1 s limit")


def test_the_managed_server_limits_each_transactions_memory(graph):
    _managed_pid()
    setting = graph.read("SHOW SETTINGS YIELD name, value WHERE name = 'db.memory.transaction.max' RETURN value")
    assert setting[0]["value"] != "0B"
    assert transaction_memory("1g") == "512m" and transaction_memory("3013m") == "1506m"
    done = run_atlas("cypher", transaction_memory_hog(), "--timeout", "500", timeout=600)
    _one_line(done, "more memory than one transaction may use")
    assert graph.read("RETURN 1 AS one") == [{"one": 1}]


@pytest.mark.slow
def test_an_expression_nested_too_deeply_for_the_server_is_one_line(graph):
    started = time.monotonic()
    done = run_atlas("cypher", "RETURN " + "(" * 3000 + "1" + ")" * 3000 + " AS x", timeout=180)
    line = _one_line(done, "did not answer the statement")
    print(f"answered in one line after {time.monotonic() - started:.0f} s: {line}")
    assert graph.read("RETURN 1 AS one") == [{"one": 1}]


@pytest.mark.slow
def test_a_server_that_stops_answering_is_one_line(graph):
    pid = _managed_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        done = run_atlas("cypher", "RETURN 1 AS one", timeout=180)
        seconds = time.monotonic() - started
    finally:
        os.kill(pid, signal.SIGCONT)
    line = _one_line(done, "Neo4j")
    print(f"answered in one line after {seconds:.0f} s: {line}")
    assert graph.read("RETURN 1 AS one") == [{"one": 1}]


@pytest.mark.parametrize("uri", ["http://127.0.0.1:7474", "https://example.org", "127.0.0.1:7687"])
def test_a_neo4j_uri_that_is_not_bolt_is_one_line(uri):
    done = run_atlas("cypher", "RETURN 1 AS one", env=atlas_env(NEO4J_URI=uri, NEO4J_PASSWORD="x" * 12))
    _one_line(done, "NEO4J_URI must start with bolt://")


def test_a_neo4j_uri_with_credentials_is_one_line_without_them():
    password = secrets.token_hex(12)
    done = run_atlas("cypher", "RETURN 1 AS one",
                     env=atlas_env(NEO4J_URI=f"bolt://neo4j:{password}@127.0.0.1:1", NEO4J_PASSWORD="x" * 12))
    _one_line(done, "carries credentials")
    assert password not in done.stderr + done.stdout


def test_the_lock_out_after_wrong_passwords_is_one_line(graph):
    env = atlas_env(NEO4J_URI=graph.settings.uri, NEO4J_USER="neo4j", NEO4J_PASSWORD=secrets.token_hex(12))
    lines = [_one_line(run_atlas("cypher", "RETURN 1 AS one", env=env), "Neo4j at") for _ in range(5)]
    assert any("locked" in line for line in lines), lines
    deadline = time.monotonic() + 60  # the server's lock (dbms.security.auth_lock_time) lasts seconds
    while run_atlas("cypher", "RETURN 1 AS one").returncode != 0:
        assert time.monotonic() < deadline, "the right password still fails after the lock-out"
        time.sleep(1)
