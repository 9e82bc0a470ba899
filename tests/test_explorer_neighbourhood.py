"""The neighbourhood graph against a brute force over every edge (real Neo4j + GDS).

The statement prunes on the server with shortcuts (only the N strongest first-hop edges as links, a floor from the
N-th of them, a top-N cut per hop); the brute force below ranks every AFFECTS edge by the definition literally. The
graph is built so that a wrong shortcut shows: |d| takes few distinct values (ties at every cut, the floor included,
across hops too, broken by element ids in no uid order), one neighbour has more strong edges than N, features outside
the first hop have the strongest edges of all (their paths are capped by the weaker link), an edge joins two
first-hop neighbours, two runs meet in the middle layer and a shard outside the fence holds the strongest edges."""

from __future__ import annotations

from typing import Any

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from atlas.analysis import browse
from loaders.schema import shard_key
from tests.graphs import feature_table, uid, write_features

pytestmark = pytest.mark.neo4j

LAYERS = (0, 1, 2, 3)
WIDTH = 9
STRENGTHS = (0.6, 1.0, 1.5, 2.0)  # few values: ties at every cut
RUNS = {"alpha": 0, "beta": 1}  # run -> source layer; alpha L0 -> L1, L2 and beta L1 -> L2, L3


def _write_edges(graph, run: str, shard: str, edges: list[dict[str, Any]]) -> None:
    graph.write("UNWIND $rows AS row MATCH (s:Feature {uid: row.source}) MATCH (t:Feature {uid: row.target}) "
                "CREATE (s)-[:AFFECTS {run: $run, shard: $key, d: row.d, "
                "sign: CASE WHEN row.d > 0 THEN 'excitatory' ELSE 'inhibitory' END}]->(t)",
                rows=edges, run=run, key=shard_key(run, shard))


@pytest.fixture(scope="module")
def atlas(graph):
    """Two runs of random edges with tied |d|, a crowded neighbour, and a hidden shard of the strongest edges."""
    from tests.conftest import wipe

    wipe(graph)
    rng = np.random.default_rng(3)
    write_features(graph, pd.concat([feature_table(layer, WIDTH, rng) for layer in LAYERS], ignore_index=True))
    for run, source_layer in RUNS.items():
        edges = [{"source": uid(source_layer, s), "target": uid(layer, t),
                  "d": float(rng.choice([-1, 1]) * rng.choice(STRENGTHS))}
                 for s in range(WIDTH) for layer in (source_layer + 1, source_layer + 2) for t in range(WIDTH)
                 if rng.random() < 0.4]
        if run == "alpha":
            # A crowded neighbour: L1/F0 receives more strong edges than any limit below keeps.
            edges += [{"source": uid(0, s), "target": uid(1, 0), "d": 3.0} for s in range(WIDTH)
                      if not any(edge["source"] == uid(0, s) and edge["target"] == uid(1, 0) for edge in edges)]
        # Created in random order: element ids (the tie-break) follow no uid order.
        _write_edges(graph, run, "visible", [edges[index] for index in rng.permutation(len(edges))])
        _write_edges(graph, run, "hidden", [{"source": uid(source_layer, s), "target": uid(source_layer + 1, s),
                                             "d": 9.0} for s in range(WIDTH)])
        graph.write("MERGE (r:Run {id: $run}) SET r.source_layer = $layer, r.downstream_layers = $layers, "
                    "r.status = 'finalized', r.kind = 'trace', r.visible = [$key]", run=run, layer=source_layer,
                    layers=[source_layer + 1, source_layer + 2], key=shard_key(run, "visible"))
    return graph.read("MATCH (s:Feature)-[e:AFFECTS]->(t:Feature) RETURN elementId(e) AS id, e.run AS run, "
                      "e.shard AS shard, s.uid AS source, t.uid AS target, e.d AS d, e.sign AS sign")


def in_view(edges: list[dict[str, Any]], run: str | None) -> list[dict[str, Any]]:
    """The edges of visible shards of the runs in view."""
    visible = {shard_key(name, "visible") for name in RUNS if run is None or name == run}
    return [edge for edge in edges if edge["shard"] in visible]


def ranked_paths(edges: list[dict[str, Any]], center: str, run: str | None, hops: int
                 ) -> list[tuple[float, int, dict[str, Any]]]:
    """Every edge of the neighbourhood as (strength, hop, edge), strongest first: the definition, literally. Hop 1:
    every edge of the centre, as strong as its |d|; hop 2: every other edge of a feature those reach, as strong as
    the weaker of its |d| and the strongest hop-1 |d| reaching it. Ties: hop 1 first, then element id."""
    edges = in_view(edges, run)
    first = [edge for edge in edges if center in (edge["source"], edge["target"])]
    reach: dict[str, float] = {}
    for edge in first:
        neighbour = edge["target"] if edge["source"] == center else edge["source"]
        reach[neighbour] = max(reach.get(neighbour, 0.0), abs(edge["d"]))
    paths = [(abs(edge["d"]), 1, edge) for edge in first]
    if hops == 2:
        paths += [(min(abs(edge["d"]), max(reach.get(edge["source"], 0.0), reach.get(edge["target"], 0.0))), 2, edge)
                  for edge in edges if center not in (edge["source"], edge["target"])
                  and {edge["source"], edge["target"]} & reach.keys()]
    return sorted(paths, key=lambda path: (-path[0], path[1], path[2]["id"]))


def brute_force(edges: list[dict[str, Any]], center: str, run: str | None, hops: int, limit: int
                ) -> list[tuple[Any, ...]]:
    """The ``limit`` strongest paths of :func:`ranked_paths` as the statement returns them."""
    return sorted((hop, edge["run"], edge["source"], edge["target"], edge["d"], edge["sign"], strength)
                  for strength, hop, edge in ranked_paths(edges, center, run, hops)[:limit])


def served(graph, center: str, run: str | None, hops: int, limit: int) -> list[tuple[Any, ...]]:
    found = browse.neighbourhood(graph, center, run, hops, limit)
    strengths = [edge["strength"] for edge in found["edges"]]
    assert strengths == sorted(strengths, reverse=True)
    return sorted((edge["hop"], edge["run"], edge["source"], edge["target"], edge["d"], edge["sign"],
                   edge["strength"]) for edge in found["edges"])


@pytest.mark.parametrize("layer", LAYERS)
def test_the_neighbourhood_equals_the_brute_force_over_every_edge(graph, atlas, layer):
    cases = 0
    for index in range(0, WIDTH, 2):
        center = uid(layer, index)
        for run in (None, *RUNS):
            for hops in (1, 2):
                for limit in (1, 3, 7, 40):
                    expected = brute_force(atlas, center, run, hops, limit)
                    assert served(graph, center, run, hops, limit) == expected, (center, run, hops, limit)
                    cases += bool(expected)
    assert cases > 0


def test_the_test_graph_has_the_cases_that_tell_shortcuts_apart(graph, atlas):
    center, limit = uid(0, 0), 3
    first = brute_force(atlas, center, None, 1, limit)
    floor = min(abs(edge[4]) for edge in first)
    every = [edge for edge in atlas if edge["shard"] == shard_key(edge["run"], "visible")]
    neighbours = {edge[3] for edge in first}
    second = [edge for edge in every if center not in (edge["source"], edge["target"])
              and {edge["source"], edge["target"]} & neighbours]
    assert any(abs(edge["d"]) == floor for edge in second)  # a tie at the floor
    assert sum(edge["target"] == uid(1, 0) and abs(edge["d"]) == 3.0 for edge in every) > limit  # a crowded neighbour
    assert max(abs(edge["d"]) for edge in atlas) > max(abs(edge["d"]) for edge in every)  # a hidden shard
    two_hops = brute_force(atlas, center, None, 2, 40)
    assert {edge[0] for edge in two_hops} == {1, 2} and {edge[1] for edge in two_hops} == set(RUNS)
    paths = ranked_paths(atlas, center, None, 2)
    assert any(hop == 2 and strength < abs(edge["d"]) for strength, hop, edge in paths[:40])  # a capped path
    assert any(paths[cut - 1][0] == paths[cut][0] and paths[cut - 1][1] != paths[cut][1]  # a tie across hops at a cut
               for cut in (1, 3, 7, 40))


@pytest.mark.parametrize("run", (None, *RUNS))
def test_the_neighbourhood_is_connected_and_as_large_as_the_limit_allows(graph, atlas, run):
    for layer in LAYERS:
        for index in range(WIDTH):
            center = uid(layer, index)
            available = len(ranked_paths(atlas, center, run, 2))
            for limit in (1, 7, 40):
                edges = browse.neighbourhood(graph, center, run, 2, limit)["edges"]
                assert len(edges) == min(limit, available), (center, limit)
                view = nx.Graph([(edge["source"], edge["target"]) for edge in edges])
                view.add_node(center)
                assert nx.is_connected(view), (center, limit)
