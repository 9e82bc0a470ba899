"""Circuit modules: Leiden (or Louvain) communities of the |d|-weighted, undirected projection of a scope.

Per module: its size, the layers it spans, its hubs and best-connected members, and the annotation terms enriched
among its members (one-sided Fisher's exact test against every projected feature, Benjamini-Hochberg over every
(module, term) pair tested).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import hypergeom

import queries
from atlas.analysis.hubs import DEFAULT_THRESHOLD, annotate
from atlas.analysis.projection import Projection, projected
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph, translate_errors
from atlas.errors import AtlasError
from atlas.stats import benjamini_hochberg
from loaders.feature_properties import write_feature_properties

ALGORITHMS = ("leiden", "louvain")
SEED = 42
MIN_OVERLAP = 2  # a term shared by one member says nothing about the module
MAX_Q = 0.05
TOP_MEMBERS = 3


def membership(projection: Projection, algorithm: str = "leiden", gamma: float = 1.0, seed: int = SEED
               ) -> pd.DataFrame:
    """uid, layer, degree and module of every projected feature (``gamma`` and ``seed``: Leiden only)."""
    if algorithm not in ALGORITHMS:
        raise AtlasError(f"modules come from {' or '.join(ALGORITHMS)}, not {algorithm!r}")
    endpoints = getattr(projection.graph.gds, algorithm)
    # One thread: Louvain (which takes no seed) and Leiden (with its seed) then give the same modules every run.
    options: dict[str, Any] = {"relationship_weight_property": "weight", "concurrency": 1}
    if algorithm == "leiden":
        options |= {"gamma": gamma, "random_seed": seed}
    projection.check_algorithm(algorithm.title(), endpoints.estimate, **options)
    with translate_errors(projection.graph.settings):
        communities = endpoints.stream(projection.gds_graph, **options)
    features = pd.DataFrame(projection.columns("projected_features"), columns=["node_id", "uid", "layer", "out_degree"])
    # On the undirected projection a feature's degree counts its edges in both directions.
    features = features.rename(columns={"out_degree": "degree"})
    modules = communities.rename(columns={"nodeId": "node_id", "communityId": "community"})[["node_id", "community"]]
    table = features.merge(modules, on="node_id")
    # Module ids numbered by size (0 = largest), so they read the same across runs of the same scope.
    sizes = table.groupby("community").size().rename("size").reset_index()
    sizes = sizes.merge(table.groupby("community")["uid"].min().rename("first").reset_index(), on="community")
    order = sizes.sort_values(["size", "first"], ascending=[False, True])["community"].tolist()
    table["module"] = table["community"].map({community: rank for rank, community in enumerate(order)})
    return table.drop(columns=["community", "node_id"]).sort_values(["module", "degree", "uid"],
                                                                     ascending=[True, False, True], ignore_index=True)


def term_enrichment(graph: Graph, members: pd.DataFrame) -> pd.DataFrame:
    """Terms over-represented among each module's members: one-sided Fisher (hypergeometric tail) against every
    projected feature, BH over every (module, term) pair with at least MIN_OVERLAP members carrying the term."""
    columns = ["module", "term", "name", "overlap", "module_size", "term_features", "p", "q"]
    rows = graph.read(queries.internal("feature_terms").text, uids=members["uid"].tolist())[0]
    terms = pd.DataFrame(rows)
    if terms.empty:
        return pd.DataFrame(columns=columns)
    terms = terms.merge(members[["uid", "module"]], on="uid")
    population = len(members)
    term_features = terms.groupby("term")["uid"].nunique()
    module_size = members.groupby("module").size()
    tested = (terms.groupby(["module", "term", "name"])["uid"].nunique().rename("overlap").reset_index())
    tested = tested[tested["overlap"] >= MIN_OVERLAP].copy()
    if tested.empty:
        return pd.DataFrame(columns=columns)
    tested["module_size"] = tested["module"].map(module_size).to_numpy()
    tested["term_features"] = tested["term"].map(term_features).to_numpy()
    tested["p"] = hypergeom.sf(tested["overlap"] - 1, population, tested["term_features"], tested["module_size"])
    tested["q"] = benjamini_hochberg(tested["p"].to_numpy())
    return tested[columns].sort_values(["q", "p", "module", "term"], ignore_index=True)


def module_table(members: pd.DataFrame, enrichment: pd.DataFrame, hub_threshold: float) -> pd.DataFrame:
    """One row per module: size, layers, hubs (members with more edges than ``hub_threshold``), best-connected
    members and enriched terms (q <= MAX_Q)."""
    significant = enrichment[enrichment["q"] <= MAX_Q]
    terms = significant.groupby("module")["name"].apply(list).to_dict()
    rows = []
    for module, group in members.groupby("module", sort=True):
        top = group.nlargest(TOP_MEMBERS, "degree")
        rows.append({"module": int(module), "size": len(group),
                     "layers": sorted(int(layer) for layer in group["layer"].unique()),
                     "hubs": int((group["degree"] > hub_threshold).sum()),
                     "top_members": [uid if not isinstance(label, str) else f"{uid} ({label})"
                                     for uid, label in zip(top["uid"], top["label"], strict=True)],
                     "enriched_terms": terms.get(module, [])})
    return pd.DataFrame(rows, columns=["module", "size", "layers", "hubs", "top_members", "enriched_terms"])


def modules(graph: Graph, scope: Scope, algorithm: str = "leiden", gamma: float = 1.0, seed: int = SEED,
            hub_threshold: float = DEFAULT_THRESHOLD, write: bool = False, free_bytes: int | None = None
            ) -> AnalysisResult:
    """Communities of the scope's |d|-weighted undirected projection, described module by module. ``free_bytes``:
    the heap budget of the memory checks instead of the server's free heap (see ``projected``)."""
    with projected(graph, scope, free_bytes, weighted_undirected=True) as projection:
        members = membership(projection, algorithm, gamma, seed)
        edges = projection.relationship_count // 2  # undirected: GDS stores each edge in both directions
    members = annotate(graph, members)
    enrichment = term_enrichment(graph, members)
    table = module_table(members, enrichment, hub_threshold)
    sizes = table["size"].to_numpy() if len(table) else np.zeros(0, dtype=int)
    summary = {"algorithm": algorithm, "features": len(members), "edges": edges, "modules": len(table),
               "singletons": int((sizes == 1).sum()), "largest_module": int(sizes.max()) if sizes.size else 0,
               "modules_with_enriched_terms": int((table["enriched_terms"].map(len) > 0).sum())}
    if write:
        members["module_scope"] = scope.key
        summary["written"] = write_feature_properties(graph, members,
                                                      {"module": "module", "module_scope": "module_scope"})
    flags = f"--algorithm {algorithm}" + (f" --gamma {gamma:g} --seed {seed}" if algorithm == "leiden" else "")
    return AnalysisResult("modules", scope.key, summary,
                          {"modules": table, "members": members, "enrichment": enrichment}, main="modules",
                          command=f"atlas analyze modules {scope.command_flags()} {flags} "
                                  f"--hub-threshold {hub_threshold:g}")
