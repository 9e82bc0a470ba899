"""Projections, degrees and hubs on small graphs of known structure, each figure checked independently."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import queries
from atlas.analysis import degrees as degree_analysis
from atlas.analysis import hubs as hub_analysis
from atlas.analysis.hubs import HubRule
from atlas.analysis.projection import projected, projection_names
from atlas.analysis.scope import resolve_scope
from atlas.errors import AtlasError
from queries.readonly import run_read_only
from tests.graphs import write_run

pytestmark = pytest.mark.neo4j


def test_projection_exists_inside_the_context_and_is_dropped_after_success(toy, graph):
    with projected(graph, resolve_scope(graph, ["toy"])) as projection:
        assert projection.name in projection_names(graph)
        assert projection.name.startswith("atlas.toy.")
        assert projection.relationship_count == len(toy.edges)
    assert projection.name not in projection_names(graph)


def test_projection_is_dropped_after_a_failure_inside_the_context(toy, graph):
    with pytest.raises(ZeroDivisionError), projected(graph, resolve_scope(graph, ["toy"])) as projection:
        assert projection.name in projection_names(graph)
        _ = 1 / 0
    assert projection_names(graph) == []


def test_projection_is_dropped_when_an_algorithm_fails_on_the_server(toy, graph):
    with pytest.raises(Exception, match="dampingFactor"), projected(graph, resolve_scope(graph, ["toy"])) as projection:
        projection.stream("pagerank_stream", damping=7.0, iterations=20, tolerance=1e-7)
    assert projection_names(graph) == []


def test_memory_estimate_refuses_a_projection_that_does_not_fit(toy, graph):
    with pytest.raises(AtlasError, match=r"needs about .* of Neo4j heap but only 1 B is free.*--layer"), \
            projected(graph, resolve_scope(graph, ["toy"]), free_bytes=1):
        pass
    assert projection_names(graph) == []


def test_unknown_run_and_foreign_layer_are_clear_errors(toy, graph):
    with pytest.raises(AtlasError, match=r"no run 'nope' in the graph \(known runs: toy\)"):
        resolve_scope(graph, ["nope"])
    with pytest.raises(AtlasError, match="layer 7 is not a downstream layer of toy"):
        resolve_scope(graph, ["toy"], [7])


def test_degrees_equal_numpy_counts_per_feature_and_layer(toy, graph):
    result = degree_analysis.degrees(graph, resolve_scope(graph, ["toy"]))
    features = result.tables["features"].set_index("uid")
    edges = toy.edges
    assert features["out_degree"][features["out_degree"] > 0].to_dict() == edges.groupby("source").size().to_dict()
    assert features["in_degree"][features["in_degree"] > 0].to_dict() == edges.groupby("target").size().to_dict()
    for layer in (6, 11):
        expected = edges[edges["target_layer"] == layer].groupby("source").size()
        found = features[f"out_L{layer}"]
        assert found[found > 0].to_dict() == expected.to_dict()
    assert result.summary["edges"] == len(edges)


def test_degree_summary_equals_numpy_statistics(toy, graph):
    summary = degree_analysis.degrees(graph, resolve_scope(graph, ["toy"])).table.set_index(["direction", "layer"])
    out_degree = np.sort(toy.edges.groupby("source").size().to_numpy().astype(float))
    row = summary.loc[("out", "all")]
    assert row["features"] == out_degree.size
    assert row["mean"] == pytest.approx(out_degree.mean())
    assert row["median"] == pytest.approx(np.median(out_degree))
    assert row["p90"] == pytest.approx(np.percentile(out_degree, 90))
    assert row["max"] == out_degree.max()
    # Gini from its definition: mean absolute difference over twice the mean.
    pairs = np.abs(out_degree[:, None] - out_degree[None, :]).mean()
    assert row["gini"] == pytest.approx(pairs / (2 * out_degree.mean()))
    in_l11 = toy.edges[toy.edges["target_layer"] == 11].groupby("target").size()
    assert summary.loc[("in", "L11"), "mean"] == pytest.approx(in_l11.mean())


def test_degree_ccdf_is_the_fraction_at_or_above_each_degree(toy, graph):
    ccdf = degree_analysis.degrees(graph, resolve_scope(graph, ["toy"])).tables["ccdf"]
    out_degree = toy.edges.groupby("source").size().to_numpy()
    for row in ccdf[ccdf["direction"] == "out"].itertuples():
        assert row.ccdf == pytest.approx((out_degree >= row.degree).mean())


def test_two_runs_on_the_same_features_never_mix(toy, graph):
    other = toy.edges.sample(frac=0.5, random_state=1)
    write_run(graph, "toy-half", 5, [6, 11], other)
    alone = degree_analysis.degrees(graph, resolve_scope(graph, ["toy-half"])).tables["features"]
    assert alone["out_degree"].sum() == len(other)
    both = degree_analysis.degrees(graph, resolve_scope(graph, ["toy", "toy-half"])).tables["features"]
    assert both["out_degree"].sum() == len(toy.edges) + len(other)
    layer = degree_analysis.degrees(graph, resolve_scope(graph, ["toy"], [11])).tables["features"]
    assert layer["out_degree"].sum() == (toy.edges["target_layer"] == 11).sum()


def gds_pagerank(network: nx.DiGraph, damping: float = 0.85, iterations: int = 20) -> dict[str, float]:
    """GDS's (unnormalised) PageRank by power iteration: (1 - d) + d * sum of in-neighbours' rank / out-degree."""
    nodes = list(network)
    index = {node: i for i, node in enumerate(nodes)}
    rank = np.full(len(nodes), 1 - damping)
    for _ in range(iterations):
        incoming = np.zeros(len(nodes))
        for source, target in network.edges:
            incoming[index[target]] += rank[index[source]] / network.out_degree(source)
        rank = (1 - damping) + damping * incoming
    return dict(zip(nodes, rank, strict=True))


def chain_network(chain) -> nx.DiGraph:
    edges = pd.concat([run.edges for run in chain])
    return nx.DiGraph(list(zip(edges["source"], edges["target"], strict=True)))


def test_pagerank_and_betweenness_on_chained_runs_equal_independent_computations(chain, graph):
    scope = resolve_scope(graph, ["chain-a", "chain-b"])
    with projected(graph, scope) as projection:
        table = hub_analysis.hub_table(projection, HubRule(threshold=3)).set_index("uid")
    network = chain_network(chain)
    expected_rank = gds_pagerank(network)
    for node, value in expected_rank.items():
        assert table.loc[node, "pagerank"] == pytest.approx(value, rel=1e-4)
    expected_betweenness = nx.betweenness_centrality(network, normalized=False)
    for node, value in expected_betweenness.items():
        assert table.loc[node, "betweenness"] == pytest.approx(value, abs=1e-9)
    assert max(expected_betweenness.values()) > 0


def test_hub_class_by_threshold_and_by_percentile_equals_numpy(toy, graph):
    scope = resolve_scope(graph, ["toy"])
    degree = toy.edges.groupby("source").size()
    by_threshold = hub_analysis.hubs(graph, scope, HubRule(threshold=20), betweenness=False)
    assert set(by_threshold.tables["features"].query("hub")["uid"]) == set(degree[degree > 20].index)
    by_percentile = hub_analysis.hubs(graph, scope, HubRule(threshold=None, percentile=90), betweenness=False)
    features = by_percentile.tables["features"]
    cutoff = np.percentile(degree.to_numpy(), 90)  # over the sources: features with out-edges
    assert set(features.query("hub")["uid"]) == set(degree[degree >= cutoff].index)
    assert by_percentile.summary["cutoff"] == pytest.approx(cutoff)
    assert by_percentile.table["hub_rank"].is_monotonic_increasing


def test_unannotated_hubs_are_the_hubs_without_annotation_with_their_top_genes(toy, graph):
    scope = resolve_scope(graph, ["toy"])
    result = hub_analysis.unannotated_hubs(graph, scope, HubRule(threshold=15), genes=2)
    degree = toy.edges.groupby("source").size()
    features = toy.features.set_index("uid")
    expected = {uid for uid in degree[degree > 15].index if not features.loc[uid, "annotated"]}
    assert set(result.table["uid"]) == expected and expected
    for row in result.table.itertuples():
        assert row.top_genes == features.loc[row.uid, "top_genes"][:2]


def test_write_back_feeds_the_fast_library_query(toy, graph):
    scope = resolve_scope(graph, ["toy"])
    hub_analysis.hubs(graph, scope, HubRule(threshold=15), write=True)
    analysed = hub_analysis.unannotated_hubs(graph, scope, HubRule(threshold=15), genes=3)
    named = queries.get("unannotated_hubs")
    rows = run_read_only(graph, named.text, named.bind({"scope": "toy", "limit": "1000"})).rows
    assert [row["uid"] for row in rows] == analysed.table["uid"].tolist()
    assert [row["top_genes"] for row in rows] == analysed.table["top_genes"].tolist()
    hub_analysis.hubs(graph, scope, HubRule(threshold=10_000), write=True)
    assert run_read_only(graph, named.text, named.bind({"scope": "toy"})).rows == []


def test_hub_report_writes_back_and_leaves_no_projection(chain, graph):
    scope = resolve_scope(graph, ["chain-a", "chain-b"])
    report = hub_analysis.hub_report(graph, scope, HubRule(threshold=None, percentile=75))
    assert report.hubs.summary["written"] == len(report.features)
    written = graph.read("MATCH (f:Feature) WHERE f.hub_scope = $scope RETURN count(f) AS n", scope=scope.key)
    assert written[0]["n"] == len(report.features)
    assert projection_names(graph) == []


def test_memory_check_trusts_the_edge_count_the_loaders_recorded(toy, graph):
    graph.write("MATCH (r:Run {id: 'toy'}) SET r.edge_count = 10000000000")
    with pytest.raises(AtlasError, match=r"10,000,000,000 edges"), projected(graph, resolve_scope(graph, ["toy"])):
        pass
    with projected(graph, resolve_scope(graph, ["toy"], [6])) as projection:
        assert projection.relationship_count == (toy.edges["target_layer"] == 6).sum()
    assert projection_names(graph) == []


def test_sampled_betweenness_keeps_its_cost_within_the_reference_runs_budget():
    reference = 1_393_850
    assert hub_analysis.betweenness_samples(reference) == hub_analysis.BETWEENNESS_SAMPLES
    assert hub_analysis.betweenness_samples(10_000) == hub_analysis.BETWEENNESS_SAMPLES
    five_million = hub_analysis.betweenness_samples(5_000_000)
    assert hub_analysis.BETWEENNESS_MIN_SAMPLES < five_million < hub_analysis.BETWEENNESS_SAMPLES
    assert five_million * 5_000_000 <= hub_analysis.BETWEENNESS_BUDGET
    assert hub_analysis.betweenness_samples(50_000_000) == hub_analysis.BETWEENNESS_MIN_SAMPLES
