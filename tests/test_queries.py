"""The Cypher library and the read-only paths `atlas query` and `atlas cypher` (real Neo4j + GDS)."""

from __future__ import annotations

import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import queries
from atlas.errors import AtlasError
from queries.readonly import run_read_only
from tests.cli import run_atlas
from tests.graphs import chained_runs, heavy_tailed_run, uid

pytestmark = pytest.mark.neo4j

REQUIRED = {"hubs", "unannotated_hubs", "feature_edges", "paths_between", "features_by_gene", "features_by_term",
            "neighbourhood", "attenuation_counts"}


@pytest.fixture(scope="module")
def toy(graph):
    """One heavy-tailed run plus two chained runs, loaded once for the read-only tests of this module."""
    from tests.conftest import wipe

    wipe(graph)
    rng = np.random.default_rng(7)
    run = heavy_tailed_run(graph, "toy", rng)
    chain = chained_runs(graph, rng)
    return run, chain


def read(graph, name: str, **raw: str) -> pd.DataFrame:
    named = queries.get(name)
    result = run_read_only(graph, named.text, named.bind(raw))
    return pd.DataFrame(result.rows, columns=result.columns)




def test_library_has_the_required_queries_each_with_a_full_header():
    library = queries.library()
    assert set(library) >= REQUIRED
    for named in library.values():
        assert named.purpose and named.returns, named.name
        for parameter in named.parameters.values():
            assert parameter.doc, f"{named.name}: parameter {parameter.name} has no description"


def test_hubs_query_counts_out_degree_like_pandas(toy, graph):
    run, _ = toy
    expected = run.edges.groupby("source").size().sort_values(ascending=False)
    found = read(graph, "hubs", run="toy", limit="10")
    assert found["out_degree"].tolist() == expected.head(10).tolist()
    assert set(found["uid"]) <= set(expected[expected >= expected.iloc[9]].index)


def test_hubs_query_restricted_to_a_layer(toy, graph):
    run, _ = toy
    expected = run.edges[run.edges["target_layer"] == 11].groupby("source").size()
    found = read(graph, "hubs", run="toy", layers="11", limit="1000").set_index("uid")["out_degree"]
    assert found.sort_index().to_dict() == expected.sort_index().to_dict()


def test_attenuation_counts_query_matches_pandas(toy, graph):
    run, chain = toy
    found = read(graph, "attenuation_counts", runs="toy,chain-a")
    expected = pd.concat([run.edges.assign(run="toy"), chain[0].edges.assign(run="chain-a")]).groupby(
        ["run", "target_layer"]).size()
    assert {(row.run, row.layer): row.edges for row in found.itertuples()} == expected.to_dict()


def test_feature_edges_are_the_strongest_by_absolute_d(toy, graph):
    run, _ = toy
    source = run.edges["source"].value_counts().index[0]
    mine = run.edges[run.edges["source"] == source]
    expected = mine.reindex(mine["d"].abs().sort_values(ascending=False).index).head(5)
    found = read(graph, "feature_edges", uid=source, run="toy", limit="5")
    assert found["target"].tolist() == expected["target"].tolist()
    np.testing.assert_allclose(found["d"], expected["d"], rtol=1e-6)


def test_paths_between_follow_chained_runs_like_networkx(toy, graph):
    _, chain = toy
    both = pd.concat([c.edges for c in chain])
    network = nx.DiGraph(list(zip(both["source"], both["target"], strict=True)))
    source = chain[0].edges["source"].iloc[0]
    target = next(node for node in nx.descendants(network, source) if node.split("/")[2] == "L02")
    expected = {tuple(path) for path in nx.all_shortest_paths(network, source, target)}
    found = read(graph, "paths_between", source=source, target=target, limit="100")
    assert {tuple(path) for path in found["features"]} == expected
    assert set(found["hops"]) == {2}
    assert read(graph, "paths_between", source=source, target=target, run="chain-a").empty


def test_features_by_gene_and_by_term(toy, graph):
    run, _ = toy
    feature = run.features.iloc[3]
    by_gene = read(graph, "features_by_gene", gene=feature["top_genes"][1])
    assert by_gene[["uid", "rank"]].values.tolist() == [[feature["uid"], 2]]
    annotated = run.features[run.features["annotated"]].iloc[0]
    by_term = read(graph, "features_by_term", term=annotated["label"].lower())
    assert annotated["uid"] in set(by_term["uid"])
    assert all(label.lower().startswith(annotated["label"].lower()) for label in by_term["term_name"])


def test_neighbourhood_groups_edges_by_layer_and_direction(toy, graph):
    _, chain = toy
    middle = uid(1, 0)
    incoming = chain[0].edges[chain[0].edges["target"] == middle]
    outgoing = chain[1].edges[chain[1].edges["source"] == middle]
    found = read(graph, "neighbourhood", uid=middle, per_layer="2")
    counts = {(row.direction, row.layer): row.edges for row in found.itertuples()}
    expected = {key: value for key, value in {("in", 0): len(incoming), ("out", 2): len(outgoing)}.items() if value}
    assert counts == expected
    assert all(len(strongest) <= 2 for strongest in found["strongest"])


@pytest.mark.parametrize("statement", [
    "CREATE (n:Feature {uid: 'intruder'})",
    "MATCH (f:Feature) SET f.label = 'x'",
    "MATCH (f:Feature) WITH f LIMIT 1 DETACH DELETE f",
    "MERGE (n:Feature {uid: 'intruder'})",
    "MATCH (f:Feature) REMOVE f.label",
    "LOAD CSV FROM 'file:///etc/passwd' AS line RETURN line",
    "CALL db.createLabel('Intruder')",
    "CALL gds.graph.project('leak', 'Feature', 'AFFECTS')",
    "MATCH (s:Feature)-[:AFFECTS]->(t:Feature) RETURN gds.graph.project('leak', s, t)",
    "CREATE INDEX intruder FOR (n:Feature) ON (n.intruder)",
])
def test_writes_through_the_read_only_path_are_refused(toy, graph, statement):
    before = graph.read("MATCH (n) RETURN count(n) AS nodes")[0]["nodes"]
    with pytest.raises(AtlasError, match="refused"):
        run_read_only(graph, statement)
    assert graph.read("MATCH (n) RETURN count(n) AS nodes")[0]["nodes"] == before
    assert graph.read("CALL gds.graph.list() YIELD graphName RETURN count(*) AS graphs")[0]["graphs"] == 0


def test_read_only_path_allows_words_like_set_inside_strings_and_property_names(toy, graph):
    result = run_read_only(graph, "MATCH (f:Feature {uid: $uid}) RETURN 'CREATE SET' AS text, f.layer AS set",
                           {"uid": uid(1, 0)})
    assert result.rows == [{"text": "CREATE SET", "set": 1}]


def test_cypher_cli_refuses_a_write_with_one_line_and_exit_1(toy):
    done = run_atlas("cypher", "MATCH (f:Feature) SET f.label = 'x'")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "refused" in done.stderr


def test_cypher_cli_returns_json_rows_with_parameters(toy):
    done = run_atlas("cypher", "MATCH (f:Feature) WHERE f.layer = $layer RETURN count(f) AS n", "-p", "layer=2",
                     "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [{"n": 12}]


@pytest.mark.parametrize("statement", ["MATCH (f:Feature) RETRUN f.uid", "MATCH (f:Feature)\n  RETRUN f.uid"])
def test_a_syntax_error_gives_the_line_and_column_in_the_users_own_statement(toy, statement):
    offset = statement.index("RETRUN")
    line = statement.count("\n", 0, offset) + 1
    column = offset - statement.rfind("\n", 0, offset)
    done = run_atlas("cypher", statement)
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0 and "Cypher syntax error" in done.stderr
    assert f"(line {line}, column {column} (offset: {offset}))" in done.stderr, done.stderr


def test_query_cli_lists_the_library_and_runs_a_query(toy):
    listing = run_atlas("query", "--list", "--json")
    assert {entry["name"] for entry in json.loads(listing.stdout)} >= REQUIRED
    run, _ = toy
    done = run_atlas("query", "hubs", "-p", "run=toy", "-p", "limit=3", "--json")
    assert done.returncode == 0, done.stderr
    degrees = run.edges.groupby("source").size().sort_values(ascending=False)
    assert [row["out_degree"] for row in json.loads(done.stdout)] == degrees.head(3).tolist()


def test_query_cli_names_a_missing_parameter(toy):
    done = run_atlas("query", "feature_edges")
    assert done.returncode == 1
    assert "needs -p uid=" in done.stderr


def test_the_read_transaction_alone_refuses_a_write(toy, graph, monkeypatch):
    import queries.readonly

    monkeypatch.setattr(queries.readonly, "check_read_only", lambda *args: None)
    with pytest.raises(AtlasError, match="refused: the server rejected a write"):
        queries.readonly.run_read_only(graph, "CREATE (:Feature {uid: 'intruder'})")
    assert graph.read("MATCH (f:Feature {uid: 'intruder'}) RETURN count(f) AS n")[0]["n"] == 0
