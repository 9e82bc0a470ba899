"""Which projection a scope gets (GDS's native projection or the fenced Cypher one) and that both hold the same
graph: equal hub tables and degrees, column for column, where both apply; the Cypher path wherever the native one
would not be exactly the scope."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from atlas.analysis import degrees as degree_analysis
from atlas.analysis import hubs as hub_analysis
from atlas.analysis import projection as projection_module
from atlas.analysis.hubs import HubRule
from atlas.analysis.projection import projected, projection_names
from atlas.analysis.scope import resolve_scope
from loaders.hubs import write_hubs
from loaders.schema import shard_key
from tests.graphs import feature_table, write_features, write_run

pytestmark = pytest.mark.neo4j

RULE = HubRule(threshold=3)


def hub_tables(graph, scope) -> dict[bool, pd.DataFrame]:
    """The hub table (exact betweenness: the graphs are small) on the native and on the Cypher projection, after
    checking that both projections have the same form."""
    tables, forms = {}, {}
    for native in (True, False):
        with projected(graph, scope, native=native) as projection:
            assert projection.native is native
            forms[native] = (projection.gds_graph.node_properties(), projection.gds_graph.relationship_types())
            tables[native] = hub_analysis.hub_table(projection, RULE)
    assert forms[True] == forms[False] == ({"Feature": ["layer"]}, ["AFFECTS"])
    return tables


def test_native_and_cypher_projections_give_equal_hub_tables_on_chained_runs(chain, graph):
    tables = hub_tables(graph, resolve_scope(graph, ["chain-a", "chain-b"]))
    pd.testing.assert_frame_equal(tables[True], tables[False], check_exact=False, rtol=1e-9)
    assert tables[True]["betweenness"].max() > 0


def test_native_and_cypher_projections_give_equal_hub_tables_with_featureless_edges_left_out(toy, graph):
    write_features(graph, feature_table(9, 5, np.random.default_rng(3)))  # catalog features without any edge
    tables = hub_tables(graph, resolve_scope(graph, ["toy"]))
    pd.testing.assert_frame_equal(tables[True], tables[False], check_exact=False, rtol=1e-9)
    with_edges = set(toy.edges["source"]) | set(toy.edges["target"])
    assert set(tables[True]["uid"]) == with_edges
    assert projection_names(graph) == []


@pytest.mark.parametrize("native", [True, False])
def test_out_degrees_per_layer_equal_numpy_counts_on_chained_runs(chain, graph, native):
    with projected(graph, resolve_scope(graph, ["chain-a", "chain-b"]), native=native) as projection:
        assert projection.native is native
        features = degree_analysis.degrees_from_projection(projection).tables["features"].set_index("uid")
    edges = pd.concat([run.edges for run in chain])
    assert sorted(edges["target_layer"].unique()) == [1, 2]
    for layer in (1, 2):
        expected = edges[edges["target_layer"] == layer].groupby("source").size()
        found = features[f"out_L{layer}"]
        assert found[found > 0].to_dict() == expected.to_dict()
    # a layer-1 feature is a target of chain-a and a source of chain-b: its out-degree is all into layer 2
    assert (features["out_L1"] + features["out_L2"] == features["out_degree"]).all()


def hide_edges(graph, toy, count: int) -> None:
    """Edges of a shard that is loading: committed but not yet visible."""
    graph.write("UNWIND $rows AS row MATCH (s:Feature {uid: row.source}) MATCH (t:Feature {uid: row.target}) "
                "CREATE (s)-[:AFFECTS {run: 'toy', shard: $key, d: row.d, q: 0.01}]->(t)",
                rows=toy.edges.head(count)[["source", "target", "d"]].to_dict(orient="records"),
                key=shard_key("toy", "loading"))


def test_a_scope_that_is_not_every_stored_edge_gets_the_exact_cypher_projection(toy, graph):
    half = toy.edges.sample(frac=0.5, random_state=1)
    write_run(graph, "toy-half", 5, [6, 11], half)
    both = pd.concat([toy.edges, half])
    cases = {"one of two runs": (resolve_scope(graph, ["toy"]), len(toy.edges)),
             "a downstream layer": (resolve_scope(graph, ["toy", "toy-half"], [6]),
                                    int((both["target_layer"] == 6).sum())),
             "a q-value limit": (resolve_scope(graph, ["toy", "toy-half"], max_q=0.05), len(both))}
    for case, (scope, edges) in cases.items():
        with projected(graph, scope) as projection:
            assert not projection.native, case
            assert projection.relationship_count == edges, case
    with projected(graph, resolve_scope(graph, ["toy", "toy-half"])) as projection:
        assert projection.native
        assert projection.relationship_count == len(both)


def test_hidden_shards_and_unpublished_runs_send_the_scope_to_the_cypher_projection(toy, graph):
    scope = resolve_scope(graph, ["toy"])
    hide_edges(graph, toy, 7)
    with projected(graph, scope) as projection:
        assert not projection.native
        assert projection.relationship_count == len(toy.edges)
    graph.write("MATCH ()-[edge:AFFECTS {shard: $key}]->() DELETE edge", key=shard_key("toy", "loading"))
    graph.write("MATCH (run:Run {id: 'toy'}) SET run.shards = run.shards + ['loaded-not-published']")
    with projected(graph, scope) as projection:
        assert not projection.native


def test_weighted_undirected_projections_are_cypher_projections(toy, graph):
    with projected(graph, resolve_scope(graph, ["toy"]), weighted_undirected=True) as projection:
        assert not projection.native
        assert projection.gds_graph.relationship_properties() == {"AFFECTS": ["weight"]}


def test_a_load_landing_while_projecting_natively_falls_back_to_the_cypher_projection(toy, graph, monkeypatch):
    real_check = projection_module.native_scope
    calls = []

    def check_then_load(graph_, scope_):
        expected = real_check(graph_, scope_)
        calls.append(expected)
        if len(calls) == 1:
            hide_edges(graph, toy, 5)  # another process commits a batch right after the check
        return expected

    monkeypatch.setattr(projection_module, "native_scope", check_then_load)
    with projected(graph, resolve_scope(graph, ["toy"])) as projection:
        assert not projection.native
        assert projection.relationship_count == len(toy.edges)
    assert calls[0] is not None  # the native projection applied when checked, and was made before the load
    assert projection_names(graph) == []


def test_write_back_removes_the_hub_properties_of_features_that_left_the_scope(toy, graph):
    table = hub_analysis.hubs(graph, resolve_scope(graph, ["toy"]), RULE, betweenness=False).tables["features"]
    write_hubs(graph, "toy", table)
    left, kept = table.iloc[0], table.iloc[1:].copy()
    kept["hub_rank"] += 100
    write_hubs(graph, "toy", kept)
    rows = graph.read("MATCH (f:Feature) WHERE f.hub_scope = 'toy' RETURN f.uid AS uid, f.hub_rank AS hub_rank")
    assert {row["uid"]: row["hub_rank"] for row in rows} == dict(zip(kept["uid"], kept["hub_rank"], strict=True))
    assert graph.read("MATCH (f:Feature {uid: $uid}) RETURN f.hub AS hub, f.hub_pagerank AS pagerank",
                      uid=left["uid"]) == [{"hub": None, "pagerank": None}]
