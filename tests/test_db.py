"""The foundation: the managed Neo4j + GDS server, the schema, connections and their errors."""

from __future__ import annotations

import json
import os
import socket
import stat
import urllib.request
from dataclasses import replace

import pytest
from neo4j.exceptions import ConstraintError

from atlas.db import artifacts, server
from atlas.db.connection import ConnectionSettings, connect
from atlas.errors import AtlasError
from loaders.schema import NODE_TYPES, apply_schema, schema_statements
from tests.cli import run_atlas

pytestmark = pytest.mark.neo4j


def test_server_reports_pinned_neo4j_and_gds_versions(graph):
    version, edition, gds_version = graph.server_versions()
    assert version == artifacts.NEO4J_VERSION
    assert edition == "community"
    assert gds_version == artifacts.GDS_VERSION


def test_schema_creation_is_idempotent(graph):
    apply_schema(graph)
    first = graph.read("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names")[0]["names"]
    apply_schema(graph)
    second = graph.read("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS names")[0]["names"]
    assert sorted(first) == sorted(second)
    assert len(first) == len(NODE_TYPES)
    index_names = {row["name"] for row in graph.read("SHOW INDEXES YIELD name RETURN name")}
    declared = {statement.split()[2] for statement in schema_statements() if statement.startswith("CREATE")}
    assert declared <= index_names | set(first)


def test_schema_replaces_the_obsolete_composite_affects_index(graph):
    graph.write("CREATE INDEX affects_run_shard IF NOT EXISTS FOR ()-[r:AFFECTS]-() ON (r.run, r.shard)")
    try:
        apply_schema(graph)
        indexes = {row["name"]: row["properties"] for row in graph.read(
            "SHOW INDEXES YIELD name, properties, entityType WHERE entityType = 'RELATIONSHIP' "
            "RETURN name, properties")}
        assert "affects_run_shard" not in indexes
        assert indexes["affects_shard"] == ["shard"]
    finally:
        graph.write("DROP INDEX affects_run_shard IF EXISTS")


@pytest.mark.parametrize("node_type", NODE_TYPES, ids=lambda node: node.label)
def test_uniqueness_constraint_rejects_a_duplicate_key(clean_graph, node_type):
    query = f"CREATE (:{node_type.label} {{{node_type.key}: $key}})"
    clean_graph.write(query, key="dup-1")
    with pytest.raises(ConstraintError):
        clean_graph.write(query, key="dup-1")


def test_gds_degree_centrality_matches_hand_computed_degrees(clean_graph):
    # A small directed graph: a->b, a->c, a->d, b->c, d->c. Out-degrees a3 b1 c0 d1; in-degrees a0 b1 c3 d1.
    edges = [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("d", "c")]
    clean_graph.write(
        "UNWIND $edges AS edge MERGE (s:Feature {uid: edge[0]}) MERGE (t:Feature {uid: edge[1]}) "
        "CREATE (s)-[:AFFECTS {run: 'hand'}]->(t)",
        edges=[list(edge) for edge in edges],
    )
    clean_graph.read("CALL gds.graph.project('test_hand', 'Feature', 'AFFECTS') YIELD graphName RETURN graphName")
    try:
        out_degree = {row["uid"]: row["score"] for row in clean_graph.read(
            "CALL gds.degree.stream('test_hand') YIELD nodeId, score "
            "RETURN gds.util.asNode(nodeId).uid AS uid, score")}
        in_degree = {row["uid"]: row["score"] for row in clean_graph.read(
            "CALL gds.degree.stream('test_hand', {orientation: 'REVERSE'}) YIELD nodeId, score "
            "RETURN gds.util.asNode(nodeId).uid AS uid, score")}
    finally:
        clean_graph.read("CALL gds.graph.drop('test_hand') YIELD graphName RETURN graphName")
    assert out_degree == {"a": 3.0, "b": 1.0, "c": 0.0, "d": 1.0}
    assert in_degree == {"a": 0.0, "b": 1.0, "c": 3.0, "d": 1.0}


def test_wrong_password_is_a_clear_error(graph):
    settings = replace(graph.settings, password="not-the-password")
    with pytest.raises(AtlasError, match="refused the credentials"):
        connect(settings)


def test_unreachable_server_is_a_clear_error():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    settings = ConnectionSettings(f"bolt://127.0.0.1:{free_port}", "neo4j", "x", "neo4j", managed=False)
    with pytest.raises(AtlasError, match="cannot reach Neo4j"):
        connect(settings)


def test_missing_database_is_a_clear_error(graph):
    settings = replace(graph.settings, database="nosuchdatabase")
    with pytest.raises(AtlasError, match="does not exist"), connect(settings) as other:
        other.read("RETURN 1")


@pytest.mark.skipif(bool(os.environ.get("NEO4J_URI")), reason="managed server only")
def test_generated_password_is_owner_only(graph):
    config = server.ServerConfig.from_env()
    if os.environ.get("NEO4J_PASSWORD"):
        pytest.skip("password taken from NEO4J_PASSWORD")
    mode = stat.S_IMODE(config.password_file.stat().st_mode)
    assert mode == 0o600


@pytest.mark.skipif(bool(os.environ.get("NEO4J_URI")), reason="managed server only")
def test_managed_server_listens_on_localhost_only(graph):
    conf = (server.ServerConfig.from_env().home / "conf" / "neo4j.conf").read_text()
    assert "server.default_listen_address=127.0.0.1" in conf
    assert "dbms.security.auth_enabled=true" in conf


@pytest.mark.skipif(bool(os.environ.get("NEO4J_URI")), reason="managed server only")
def test_managed_server_bounds_its_transaction_logs_by_default(graph):
    conf = (server.ServerConfig.from_env().home / "conf" / "neo4j.conf").read_text()
    if server.ServerConfig.from_env().tx_logs != "bounded":
        pytest.skip("ATLAS_NEO4J_TX_LOGS chose Neo4j's settings")
    assert server.BOUNDED_TX_LOGS in conf


def test_unknown_transaction_log_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("ATLAS_NEO4J_TX_LOGS", "forever")
    with pytest.raises(AtlasError, match="ATLAS_NEO4J_TX_LOGS must be 'bounded' or 'neo4j'"):
        server.ServerConfig.from_env()


def test_port_in_use_is_a_clear_error(tmp_path, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setenv("ATLAS_HOME", str(tmp_path))
        monkeypatch.setenv("ATLAS_BOLT_PORT", str(port))
        with pytest.raises(AtlasError, match=f"port {port} .* already in use"):
            server.start(server.ServerConfig.from_env())


@pytest.mark.skipif(bool(os.environ.get("NEO4J_URI")), reason="managed server only")
def test_db_status_json_reports_versions_from_the_server(graph):
    result = run_atlas("db", "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["running"] is True
    assert status["neo4j_version"] == artifacts.NEO4J_VERSION
    assert status["gds_version"] == artifacts.GDS_VERSION


@pytest.mark.skipif(bool(os.environ.get("NEO4J_URI")), reason="managed server only")
def test_managed_server_serves_the_neo4j_browser_at_the_printed_url(graph):
    url = server.ServerConfig.from_env().browser_url
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        page = response.read().decode()
    assert "<title>Neo4j Browser</title>" in page


@pytest.mark.skipif(bool(os.environ.get("NEO4J_URI")), reason="managed server only")
def test_discovery_names_the_managed_bolt_port_for_the_browser(graph):
    config = server.ServerConfig.from_env()
    with urllib.request.urlopen(f"http://{config.connect_host}:{config.http_port}/", timeout=30) as response:
        discovery = json.loads(response.read())
    assert discovery["bolt_direct"] == config.bolt_uri
