"""Small circuit graphs of known structure, written with parameterised Cypher, for the analysis and query tests.

Each builder returns the edge and feature tables it wrote, so a test can compute every figure independently
(numpy, scipy, networkx) and compare it with what the analyses read back from Neo4j + GDS.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from atlas.db.connection import Graph
from loaders.schema import feature_uid, shard_key

MODEL, SAE = "toy", "sae4"


@dataclass
class ToyRun:
    """What a builder wrote: the run id, its edges (source, target, target_layer, d, sign) and its features."""

    run: str
    edges: pd.DataFrame
    features: pd.DataFrame


def uid(layer: int, index: int) -> str:
    """The uid of a toy feature."""
    return feature_uid(MODEL, SAE, layer, index)


def write_features(graph: Graph, features: pd.DataFrame) -> None:
    """MERGE features (uid, layer, index, activation_freq, annotated, label) with TOP_GENE and ENRICHED_IN links."""
    rows = features.to_dict(orient="records")
    graph.write(
        "UNWIND $rows AS row MERGE (f:Feature {uid: row.uid}) "
        "SET f.model = $model, f.sae = $sae, f.layer = row.layer, f.index = row.index, "
        "f.activation_freq = row.activation_freq, f.annotated = row.annotated, f.label = row.label "
        "WITH f, row UNWIND range(0, size(row.top_genes) - 1) AS rank "
        "MERGE (g:Gene {id: 'ENSG' + row.top_genes[rank]}) SET g.symbol = row.top_genes[rank] "
        "MERGE (f)-[t:TOP_GENE]->(g) SET t.rank = rank + 1, t.weight = 1.0 / (rank + 1)",
        rows=rows, model=MODEL, sae=SAE)
    graph.write(
        "UNWIND $rows AS row WITH row WHERE row.annotated MATCH (f:Feature {uid: row.uid}) "
        "MERGE (t:Term {id: 'GO:' + row.label}) SET t.name = row.label + ' process', t.source = 'GO' "
        "MERGE (f)-[e:ENRICHED_IN]->(t) SET e.p_adj = 0.001",
        rows=rows)


def write_run(graph: Graph, run: str, source_layer: int, downstream_layers: list[int], edges: pd.DataFrame) -> None:
    """Create the Run node and its AFFECTS edges (columns source, target, d), as one visible shard whose edges the
    Run node records (``shards``, ``edge_count``), as the loaders do."""
    key = shard_key(run, "toy")
    rows = edges[["source", "target", "d"]].to_dict(orient="records")
    graph.write(
        "UNWIND $rows AS row MATCH (s:Feature {uid: row.source}) MATCH (t:Feature {uid: row.target}) "
        "CREATE (s)-[:AFFECTS {run: $run, shard: $key, d: row.d, mean: row.d / 10.0, std: 0.1, consistency: 0.9, "
        "n: 20, p: 0.001, q: 0.01, sign: CASE WHEN row.d > 0 THEN 'excitatory' ELSE 'inhibitory' END}]->(t)",
        rows=rows, run=run, key=key)
    graph.write("MERGE (r:Run {id: $run}) SET r.model = $model, r.sae = $sae, r.source_layer = $source_layer, "
                "r.downstream_layers = $layers, r.status = 'finalized', r.kind = 'trace', r.visible = [$key], "
                "r.shards = ['toy'], r.edge_count = $edges",
                run=run, model=MODEL, sae=SAE, source_layer=source_layer, layers=downstream_layers, key=key,
                edges=len(rows))


def feature_table(layer: int, count: int, rng: np.random.Generator, annotated_rate: float = 0.5) -> pd.DataFrame:
    """``count`` features of a layer with random activation frequencies, annotations and three top genes each."""
    annotated = rng.random(count) < annotated_rate
    return pd.DataFrame({
        "uid": [uid(layer, index) for index in range(count)],
        "layer": layer,
        "index": np.arange(count),
        "activation_freq": rng.uniform(0.002, 0.2, count).round(5),
        "annotated": annotated,
        "label": [f"L{layer}T{index}" if flag else None for index, flag in enumerate(annotated)],
        "top_genes": [[f"G{layer}_{index}_{rank}" for rank in range(3)] for index in range(count)],
    })


def heavy_tailed_run(graph: Graph, run: str, rng: np.random.Generator, source_layer: int = 5,
                     downstream_layers: tuple[int, ...] = (6, 11), sources: int = 60, targets: int = 40,
                     write_nodes: bool = True) -> ToyRun:
    """A bipartite run whose source out-degrees are heavy-tailed (Pareto) and grow with activation frequency."""
    features = pd.concat([feature_table(layer, sources if layer == source_layer else targets, rng)
                          for layer in (source_layer, *downstream_layers)], ignore_index=True)
    source_rows = features[features["layer"] == source_layer]
    edges = []
    for source, freq in zip(source_rows["uid"], source_rows["activation_freq"], strict=True):
        wanted = int(min(targets * len(downstream_layers), 1 + rng.pareto(1.3) * 6 + freq * 100))
        for flat in rng.choice(targets * len(downstream_layers), size=wanted, replace=False):
            layer = downstream_layers[flat // targets]
            edges.append({"source": source, "target": uid(layer, int(flat % targets)), "target_layer": layer,
                          "d": float(rng.choice([-1, 1]) * rng.uniform(0.5, 3.0))})
    edges = pd.DataFrame(edges)
    if write_nodes:
        write_features(graph, features)
    write_run(graph, run, source_layer, list(downstream_layers), edges)
    return ToyRun(run, edges, features)


def chained_runs(graph: Graph, rng: np.random.Generator, width: int = 12, density: float = 0.3) -> list[ToyRun]:
    """Two runs that chain: run ``chain-a`` L0 -> L1 and run ``chain-b`` L1 -> L2, random edges with ``density``."""
    features = pd.concat([feature_table(layer, width, rng) for layer in (0, 1, 2)], ignore_index=True)
    write_features(graph, features)
    runs = []
    for run, source_layer in (("chain-a", 0), ("chain-b", 1)):
        pairs = [(s, t) for s in range(width) for t in range(width) if rng.random() < density]
        edges = pd.DataFrame({"source": [uid(source_layer, s) for s, _ in pairs],
                              "target": [uid(source_layer + 1, t) for _, t in pairs],
                              "target_layer": source_layer + 1,
                              "d": rng.uniform(0.6, 2.0, len(pairs))})
        write_run(graph, run, source_layer, [source_layer + 1], edges)
        runs.append(ToyRun(run, edges, features))
    return runs
