"""The neighbourhood graph against a brute force over every edge (real Neo4j + GDS).

The statement prunes on the server with shortcuts (a floor from the N-th strongest first-hop edge, top-N cuts per
hop); the brute force below reads every AFFECTS edge and applies the definition literally. The graph is built so
that a wrong shortcut shows: |d| takes few distinct values (ties at every cut, the floor included, broken by
element ids in no uid order), one neighbour
has more strong edges than N, features outside the first hop have the strongest edges of all, an edge joins two
first-hop neighbours, two runs meet in the middle layer and a shard outside the fence holds the strongest edges.
"""

from __future__ import annotations

from typing import Any

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


def brute_force(edges: list[dict[str, Any]], center: str, run: str | None, hops: int, limit: int
                ) -> list[tuple[Any, ...]]:
    """The definition, literally: the centre's ``limit`` strongest edges (hop 1) and every edge of the neighbours
    they reach (hop 2); of both the ``limit`` strongest, less the hop-2 edges no kept hop-1 edge reaches.
    Strength: |d| descending, ties by element id; only edges of visible shards of the runs in view."""
    visible = {shard_key(name, "visible") for name in RUNS if run is None or name == run}
    edges = [edge for edge in edges if edge["shard"] in visible]

    def ranked(chosen: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(chosen, key=lambda edge: (-abs(edge["d"]), edge["id"]))

    def other_end(edge: dict[str, Any]) -> str:
        return edge["target"] if edge["source"] == center else edge["source"]

    first = ranked([edge for edge in edges if center in (edge["source"], edge["target"])])[:limit]
    neighbours = {other_end(edge) for edge in first}
    second = [] if hops == 1 else [edge for edge in edges if center not in (edge["source"], edge["target"])
                                   and {edge["source"], edge["target"]} & neighbours]
    hop = {edge["id"]: 1 for edge in first} | {edge["id"]: 2 for edge in second}
    kept = ranked(first + second)[:limit]
    reached = {other_end(edge) for edge in kept if hop[edge["id"]] == 1}
    return sorted((hop[edge["id"]], edge["run"], edge["source"], edge["target"], edge["d"], edge["sign"])
                  for edge in kept if hop[edge["id"]] == 1 or {edge["source"], edge["target"]} & reached)


def served(graph, center: str, run: str | None, hops: int, limit: int) -> list[tuple[Any, ...]]:
    found = browse.neighbourhood(graph, center, run, hops, limit)
    assert [abs(edge["d"]) for edge in found["edges"]] == sorted((abs(edge["d"]) for edge in found["edges"]),
                                                                 reverse=True)
    return sorted((edge["hop"], edge["run"], edge["source"], edge["target"], edge["d"], edge["sign"])
                  for edge in found["edges"])


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
