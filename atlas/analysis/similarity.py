"""Redundancy by target overlap: GDS node similarity (Jaccard over downstream targets) among source features.

Two features that drive the same targets are candidates for redundancy. Where `atlas ablate` measured feature sets
of the same model and SAEs, each set's mean pairwise target overlap is put beside its measured redundancy ratio,
with their Spearman correlation: does overlap in the graph predict redundancy under ablation?
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

import queries
from atlas.analysis.algorithms import with_features
from atlas.analysis.projection import projected
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph, translate_errors

DEFAULT_TOP_K = 10
MIN_SETS_FOR_SPEARMAN = 3


def jaccard(first: set, second: set) -> float:
    """|A ∩ B| / |A ∪ B| (0 for two empty sets)."""
    union = len(first | second)
    return len(first & second) / union if union else 0.0


def similar_pairs(graph: Graph, scope: Scope, top_k: int = DEFAULT_TOP_K, free_bytes: int | None = None
                  ) -> pd.DataFrame:
    """For each feature with downstream targets, its ``top_k`` most similar features by target Jaccard
    (``free_bytes``: the heap budget of the memory checks instead of the server's free heap, see ``projected``)."""
    options = {"top_k": top_k, "similarity_metric": "JACCARD"}
    with projected(graph, scope, free_bytes) as projection:
        projection.check_algorithm("nodeSimilarity", graph.gds.node_similarity.estimate, **options)
        with translate_errors(graph.settings):
            stream = graph.gds.node_similarity.stream(projection.gds_graph, **options)
    pairs = with_features(graph, stream).rename(columns={
        "node1_uid": "uid", "node1_label": "label", "node1_layer": "layer", "node2_uid": "similar_uid",
        "node2_label": "similar_label", "node2_layer": "similar_layer", "similarity": "jaccard"})
    columns = ["uid", "label", "layer", "similar_uid", "similar_label", "similar_layer", "jaccard"]
    if pairs.empty:
        return pd.DataFrame(columns=[*columns, "rank"])
    pairs = pairs[columns].sort_values(["uid", "jaccard", "similar_uid"], ascending=[True, False, True],
                                       ignore_index=True)
    pairs["rank"] = pairs.groupby("uid").cumcount() + 1
    return pairs


def ablation_overlap(graph: Graph, scope: Scope) -> pd.DataFrame:
    """Ablated feature sets of the scope's model and SAEs whose members all have targets in the scope, with their
    mean pairwise target Jaccard and measured median redundancy ratio."""
    columns = ["run", "set_id", "selection", "order", "members", "mean_jaccard", "median_redundancy"]
    runs = [row["run"] for row in graph.read(queries.internal("experiment_runs_for_scope").text,
                                             runs=list(scope.runs), kind="ablation")]
    sets = graph.read(queries.internal("interaction_sets").text, runs=runs) if runs else []
    members = sorted({uid for row in sets for uid in row["members"]})
    if not members:
        return pd.DataFrame(columns=columns)
    targets = {row["uid"]: set(row["targets"]) for row in graph.read(
        queries.internal("feature_targets").text, uids=members, **scope.parameters())}
    rows = []
    for row in sets:
        if len(row["members"]) < 2 or not all(uid in targets for uid in row["members"]):
            continue
        overlaps = [jaccard(targets[a], targets[b]) for a, b in combinations(row["members"], 2)]
        rows.append({"run": row["run"], "set_id": row["set_id"], "selection": row["selection"],
                     "order": row["order"], "members": row["members"], "mean_jaccard": float(np.mean(overlaps)),
                     "median_redundancy": row["median_redundancy"]})
    return pd.DataFrame(rows, columns=columns)


def similarity(graph: Graph, scope: Scope, top_k: int = DEFAULT_TOP_K, free_bytes: int | None = None
               ) -> AnalysisResult:
    """Top-k target-overlap neighbours of every source feature, beside ablation redundancy where measured
    (``free_bytes`` as in :func:`similar_pairs`)."""
    pairs = similar_pairs(graph, scope, top_k, free_bytes)
    overlap = ablation_overlap(graph, scope)
    measured = overlap.dropna(subset=["mean_jaccard", "median_redundancy"])
    summary: dict[str, Any] = {
        "features_compared": int(pairs["uid"].nunique()), "pairs": len(pairs), "top_k": top_k,
        "median_jaccard": float(pairs["jaccard"].median()) if len(pairs) else None,
        "ablation_sets": len(overlap), "spearman_rho": None, "spearman_p": None}
    if len(measured) >= MIN_SETS_FOR_SPEARMAN and measured["mean_jaccard"].nunique() > 1 \
            and measured["median_redundancy"].nunique() > 1:
        rho, p_value = spearmanr(measured["mean_jaccard"], measured["median_redundancy"])
        summary["spearman_rho"], summary["spearman_p"] = float(rho), float(p_value)
    return AnalysisResult("similarity", scope.key, summary, {"pairs": pairs, "ablation": overlap}, main="pairs",
                          command=f"atlas analyze similarity {scope.command_flags()} --top-k {top_k}")
