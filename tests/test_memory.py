"""Memory before anything runs out, on the real Neo4j + GDS: every algorithm the product runs is refused in one line
when GDS's own estimate exceeds the heap left after the projection (nothing left behind), runs when it fits, and the
server's own answers that memory ran out are one line too."""

from __future__ import annotations

import os

import pytest

import queries
from atlas.analysis import hubs as hub_analysis
from atlas.analysis import modules as module_analysis
from atlas.analysis import similarity as similarity_analysis
from atlas.analysis.algorithms import run_algorithm
from atlas.analysis.projection import check_memory, projected, projection_names
from atlas.analysis.scope import resolve_scope
from atlas.db import server
from atlas.db.connection import translate_errors
from atlas.db.server import transaction_memory
from atlas.errors import AtlasError
from loaders.digest import graph_digest

pytestmark = pytest.mark.neo4j

ADVICE = r"of Neo4j heap but only (?P<free>.+) is free: give the server more heap \(ATLAS_NEO4J_HEAP=.*--layer$"
LEIDEN = {"relationship_weight_property": "weight", "concurrency": 1, "gamma": 1.0,
          "random_seed": module_analysis.SEED}


def projection_bytes(graph, scope, weighted_undirected: bool = False) -> int:
    """GDS's estimate of the scope's projection (the part of a budget the projection takes)."""
    return check_memory(graph, scope, weighted_undirected=weighted_undirected).required_bytes


def estimates(graph, scope, weighted_undirected: bool = False, **endpoints) -> dict[str, int]:
    """GDS's estimates of some algorithms (name -> (client endpoint, configuration)) on the scope's projection,
    asked through the client directly."""
    with projected(graph, scope, weighted_undirected=weighted_undirected) as projection:
        return {name: int(endpoint.estimate(projection.gds_graph, **configuration).bytes_max)
                for name, (endpoint, configuration) in endpoints.items()}


def test_modules_are_refused_in_one_line_when_leiden_needs_more_than_the_budget_leaves(toy, graph):
    scope = resolve_scope(graph, ["toy"])
    before = graph_digest(graph)
    with pytest.raises(AtlasError, match=r"^running Leiden on scope toy needs about .* " + ADVICE) as refused:
        module_analysis.modules(graph, scope, write=True, free_bytes=projection_bytes(graph, scope, True))
    assert "\n" not in str(refused.value) and "only 0 B is free" in str(refused.value)
    assert projection_names(graph) == []
    assert graph_digest(graph) == before


def test_the_projection_estimate_of_modules_counts_the_weights_and_both_directions(toy, graph):
    scope = resolve_scope(graph, ["toy"])
    directed = projection_bytes(graph, scope)
    assert check_memory(graph, scope, weighted_undirected=True).required_bytes > directed
    with pytest.raises(AtlasError, match=rf"^projecting scope toy \({len(toy.edges):,} edges, .*\) needs about "):
        module_analysis.modules(graph, scope, free_bytes=directed)
    assert projection_names(graph) == []


def test_modules_run_when_the_budget_covers_the_projection_and_leiden_exactly(toy, graph):
    scope = resolve_scope(graph, ["toy"])
    leiden = estimates(graph, scope, weighted_undirected=True, leiden=(graph.gds.leiden, LEIDEN))["leiden"]
    budget = projection_bytes(graph, scope, True) + leiden
    with pytest.raises(AtlasError, match=r"^running Leiden on scope toy needs about "):
        module_analysis.modules(graph, scope, free_bytes=budget - 1)
    result = module_analysis.modules(graph, scope, free_bytes=budget)
    assert result.summary["features"] == len(set(toy.edges["source"]) | set(toy.edges["target"]))
    assert projection_names(graph) == []


def test_louvain_is_checked_with_its_own_estimate(toy, graph):
    scope = resolve_scope(graph, ["toy"])
    with pytest.raises(AtlasError, match=r"^running Louvain on scope toy needs about "):
        module_analysis.modules(graph, scope, algorithm="louvain", free_bytes=projection_bytes(graph, scope, True))
    assert projection_names(graph) == []


def test_hubs_refuse_betweenness_that_does_not_fit_before_running_pagerank(toy, graph):
    scope = resolve_scope(graph, ["toy"])
    sampling = {}  # the toy is small enough for exact betweenness
    found = estimates(graph, scope, pagerank=(graph.gds.page_rank, {}),
                      betweenness=(graph.gds.betweenness_centrality, sampling))
    assert found["betweenness"] > found["pagerank"] > 0
    budget = projection_bytes(graph, scope) + found["pagerank"]
    with pytest.raises(AtlasError, match=r"^running betweenness on scope toy needs about "):
        hub_analysis.hubs(graph, scope, write=True, free_bytes=budget)
    assert projection_names(graph) == []
    assert graph.read("MATCH (f:Feature) WHERE f.hub_rank IS NOT NULL RETURN count(f) AS n") == [{"n": 0}]
    without = hub_analysis.hubs(graph, scope, betweenness=False, free_bytes=budget)
    assert without.summary["betweenness"] == "skipped" and without.summary["features"] > 0
    with pytest.raises(AtlasError, match=r"^running PageRank on scope toy needs about "):
        hub_analysis.hub_report(graph, scope, free_bytes=budget - 1)
    assert projection_names(graph) == []


def test_similarity_is_refused_when_node_similarity_does_not_fit(toy, graph):
    scope = resolve_scope(graph, ["toy"])
    with pytest.raises(AtlasError, match=r"^running nodeSimilarity on scope toy needs about "):
        similarity_analysis.similarity(graph, scope, free_bytes=projection_bytes(graph, scope))
    assert projection_names(graph) == []
    assert similarity_analysis.similarity(graph, scope).summary["pairs"] > 0


def test_an_algorithm_the_server_cannot_estimate_still_runs(toy, graph):
    # The client has an estimate endpoint for closeness but the server registers no gds.closeness.*.estimate.
    result = run_algorithm(graph, resolve_scope(graph, ["toy"]), "closeness", mode="stats")
    assert result.summary["estimated_bytes"] is None
    assert "centrality_distribution.max" in set(result.table["statistic"])
    assert projection_names(graph) == []


def test_a_java_out_of_memory_error_on_the_server_is_one_line_and_the_server_still_answers(graph):
    heap = graph.read(queries.internal("server_heap").text)[0]
    # Eight bytes of node ids per generated node: four times the whole heap cannot be allocated.
    with pytest.raises(AtlasError, match=r"^Neo4j ran out of heap running gds.graph.generate: give the server"):
        graph.autocommit("CALL gds.graph.generate('atlas.test.oom', $nodes, 1)", nodes=int(heap["max"]) // 2)
    assert projection_names(graph) == []
    assert graph.read("RETURN 1 AS one") == [{"one": 1}]


def test_the_gds_memory_guard_refusal_is_one_line(toy, graph):
    with projected(graph, resolve_scope(graph, ["toy"])) as projection, \
            pytest.raises(AtlasError, match=r"^running FastRP needs about .* " + ADVICE), \
            translate_errors(graph.settings):
        graph.gds.fast_rp.stream(projection.gds_graph, embedding_dimension=100_000_000)
    assert projection_names(graph) == []


def transaction_memory_hog() -> str:
    """A read statement that collects more than the managed server lets one transaction use, whatever its heap."""
    limit = int(transaction_memory(server.ServerConfig.from_env().heap).removesuffix("m")) << 20
    # At least 8 bytes per collected integer: limit / 8 integers pass the limit.
    rows = -(-limit // 8 // 20000)
    return f"UNWIND range(1, {rows}) AS i RETURN size(collect([x IN range(1, 20000) | x + i])) AS n"


def test_the_transaction_memory_limit_is_one_line(graph):
    if os.environ.get("NEO4J_URI"):
        pytest.skip("the limit is the managed server's")
    with pytest.raises(AtlasError, match=r"^the statement needed more memory than one transaction may use \(db.memo"):
        graph.autocommit(transaction_memory_hog())
    assert graph.read("RETURN 1 AS one") == [{"one": 1}]
