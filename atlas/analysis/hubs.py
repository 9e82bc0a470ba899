"""Hubs: features ranked by degree, PageRank and betweenness (GDS), hub classes, unannotated hubs, write-back.

Within one run the graph is bipartite and degree is what matters; PageRank and betweenness become informative when
several runs chain (L0 -> ..., L5 -> ...), which is why every function takes a scope of runs projected together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import queries
from atlas.analysis.degrees import degree_table, degrees_from_projection, node_values
from atlas.analysis.projection import Projection, projected
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph
from atlas.errors import AtlasError
from loaders.hubs import write_hubs

# The reference study calls a feature with more than 1,000 edges a hub.
DEFAULT_THRESHOLD = 1000
MEASURES = ("out_degree", "in_degree", "degree", "pagerank", "betweenness")
# Exact betweenness is O(nodes x edges); above this many projected features it is estimated from a seeded sample.
BETWEENNESS_EXACT_UP_TO = 5000
BETWEENNESS_SAMPLES = 256
BETWEENNESS_SEED = 42
# Sampled betweenness walks the whole projection once per sampled source, so its cost is samples x edges. The budget
# is what 256 sources cost on the reference run (1,393,850 edges): larger scopes get fewer sources, never fewer than
# BETWEENNESS_MIN_SAMPLES (at 5M edges 256 sources took 8-58 s here; benchmarks/README.md).
BETWEENNESS_BUDGET = BETWEENNESS_SAMPLES * 1_393_850
BETWEENNESS_MIN_SAMPLES = 16


@dataclass(frozen=True)
class HubRule:
    """Which features are hubs: ``by`` above a threshold, or at or above a percentile of the features where ``by`` is
    positive (for out-degree: the sources)."""

    threshold: float | None = DEFAULT_THRESHOLD
    percentile: float | None = None
    by: str = "out_degree"

    def __post_init__(self) -> None:
        if self.by not in MEASURES:
            raise AtlasError(f"hubs can be ranked by {', '.join(MEASURES)}, not {self.by!r}")
        if self.percentile is not None and not 0 < self.percentile < 100:
            raise AtlasError(f"--percentile must be between 0 and 100, got {self.percentile}")
        if (self.threshold is None) == (self.percentile is None):
            raise AtlasError("choose exactly one hub rule: a threshold or a percentile")

    def cutoff(self, table: pd.DataFrame) -> float:
        """The value of ``by`` a feature must exceed (threshold) or reach (percentile) to be a hub."""
        if self.threshold is not None:
            return float(self.threshold)
        with_edges = table.loc[table[self.by] > 0, self.by].to_numpy(dtype=float)
        return float(np.percentile(with_edges, self.percentile)) if with_edges.size else float("inf")

    def classify(self, table: pd.DataFrame) -> pd.Series:
        """True for the hubs among the rows of a hub table."""
        cutoff = self.cutoff(table)
        values = table[self.by]
        return values > cutoff if self.threshold is not None else values >= cutoff

    def describe(self) -> str:
        """The rule in words, e.g. ``out_degree > 1000``."""
        if self.threshold is not None:
            return f"{self.by} > {self.threshold:g}"
        return f"{self.by} >= {self.percentile:g}th percentile"

    def flags(self) -> str:
        """The CLI flags that select this rule."""
        rule = f"--threshold {self.threshold:g}" if self.threshold is not None else f"--percentile {self.percentile:g}"
        return f"{rule} --by {self.by}"


DEFAULT_RULE = HubRule()


def betweenness_samples(relationship_count: int) -> int:
    """How many sources sampled betweenness starts from on a projection of this many edges: as many as the budget
    of edge visits allows, between BETWEENNESS_MIN_SAMPLES and BETWEENNESS_SAMPLES."""
    return max(BETWEENNESS_MIN_SAMPLES, min(BETWEENNESS_SAMPLES, BETWEENNESS_BUDGET // max(relationship_count, 1)))


def betweenness_config(projection: Projection) -> dict[str, int]:
    """Exact betweenness for small projections, a seeded sample of source nodes for large ones."""
    if projection.node_count <= BETWEENNESS_EXACT_UP_TO:
        return {}
    return {"samplingSize": betweenness_samples(projection.relationship_count), "samplingSeed": BETWEENNESS_SEED}


def feature_annotations(graph: Graph, uids: list[str]) -> pd.DataFrame:
    """uid, label, annotated, terms (enrichment count) and activation_freq of some features."""
    rows = graph.read_values(queries.internal("feature_annotations").text, uids=uids)[0]["rows"]
    return pd.DataFrame(rows, columns=["uid", "label", "annotated", "terms", "activation_freq"])


def annotate(graph: Graph, table: pd.DataFrame) -> pd.DataFrame:
    """Add label, annotated (catalog flag or any enrichment term) and activation_freq to a table with a uid column."""
    info = feature_annotations(graph, table["uid"].tolist())
    merged = table.merge(info, on="uid", how="left")
    merged["annotated"] = merged["annotated"].eq(True)
    return merged


def with_centralities(projection: Projection, table: pd.DataFrame, betweenness: bool = True, damping: float = 0.85,
                      iterations: int = 20, tolerance: float = 1e-7) -> pd.DataFrame:
    """A degree table (:func:`degree_table`) with PageRank and betweenness (NaN when skipped) added."""
    node_ids = pd.Index(table["node_id"])
    table["pagerank"] = node_values(projection, "pagerank_stream", "pagerank", node_ids, damping=damping,
                                    iterations=iterations, tolerance=tolerance)
    table["betweenness"] = np.nan
    if betweenness:
        table["betweenness"] = node_values(projection, "betweenness_stream", "betweenness", node_ids,
                                           config=betweenness_config(projection))
    return table


def classified(graph: Graph, table: pd.DataFrame, rule: HubRule) -> pd.DataFrame:
    """A table of centralities with annotations, hub class and rank by the rule (the node id dropped)."""
    table = annotate(graph, table.drop(columns="node_id"))
    table["hub"] = rule.classify(table)
    table = table.sort_values([rule.by, "degree", "uid"], ascending=[False, False, True], ignore_index=True)
    table["hub_rank"] = np.arange(1, len(table) + 1)
    return table


def hub_table(projection: Projection, rule: HubRule, betweenness: bool = True, damping: float = 0.85,
              iterations: int = 20, tolerance: float = 1e-7) -> pd.DataFrame:
    """Every projected feature with degrees, PageRank, betweenness (NaN when skipped), hub class and rank."""
    if rule.by == "betweenness" and not betweenness:
        raise AtlasError("hubs ranked by betweenness need betweenness: drop --no-betweenness")
    # Both estimates before anything runs, so that a refused betweenness does not come after a long PageRank.
    gds = projection.graph.gds
    projection.check_algorithm("PageRank", gds.page_rank.estimate, damping_factor=damping, max_iterations=iterations,
                               tolerance=tolerance)
    if betweenness:
        sampling = betweenness_config(projection)
        projection.check_algorithm("betweenness", gds.betweenness_centrality.estimate,
                                   sampling_size=sampling.get("samplingSize"),
                                   sampling_seed=sampling.get("samplingSeed"))
    table = with_centralities(projection, degree_table(projection), betweenness, damping, iterations, tolerance)
    return classified(projection.graph, table, rule)


def hubs_from_table(table: pd.DataFrame, projection: Projection, rule: HubRule, top: int) -> AnalysisResult:
    """The hubs result (summary plus the hub class and the top ranks) of a computed hub table."""
    hubs = table[table["hub"]]
    shown = table[table["hub"] | (table["hub_rank"] <= top)]
    config = betweenness_config(projection)
    ranked = int((table[rule.by] > 0).sum())  # the hub fraction is over features that have some of the measure
    summary = {"features": len(table), "edges": projection.relationship_count, "rule": rule.describe(),
               "cutoff": rule.cutoff(table), "hubs": len(hubs),
               "ranked_features": ranked, "hub_fraction": len(hubs) / ranked if ranked else float("nan"),
               "hubs_annotated": float(hubs["annotated"].mean()) if len(hubs) else float("nan"),
               "betweenness": ("skipped" if table["betweenness"].isna().all() else
                               f"sampled from {config['samplingSize']} sources (seed {config['samplingSeed']})"
                               if config else "exact")}
    columns = ["hub_rank", "uid", "layer", "label", "annotated", "out_degree", "in_degree", "degree", "pagerank",
               "betweenness", "hub"]
    return AnalysisResult("hubs", projection.scope.key, summary, {"hubs": shown[columns].reset_index(drop=True),
                                                                  "features": table},
                          main="hubs", command=f"atlas analyze hubs {projection.scope.command_flags()} "
                                               f"{rule.flags()} --top {top}")


def unannotated_from_table(table: pd.DataFrame, projection: Projection, rule: HubRule, genes: int) -> AnalysisResult:
    """Hubs without any annotation, with their first ``genes`` top genes."""
    unannotated = table[table["hub"] & ~table["annotated"]].copy()
    rows = projection.graph.read(queries.internal("feature_top_genes").text, uids=unannotated["uid"].tolist(),
                                 genes=genes)
    top_genes = {row["uid"]: row["top_genes"] for row in rows}
    unannotated["top_genes"] = [top_genes.get(uid, []) for uid in unannotated["uid"]]
    hubs = int(table["hub"].sum())
    summary = {"rule": rule.describe(), "hubs": hubs, "unannotated_hubs": len(unannotated),
               "unannotated_fraction": len(unannotated) / hubs if hubs else float("nan")}
    columns = ["hub_rank", "uid", "layer", "out_degree", "in_degree", "pagerank", "betweenness", "top_genes"]
    return AnalysisResult("unannotated-hubs", projection.scope.key, summary,
                          {"unannotated_hubs": unannotated[columns].reset_index(drop=True)}, main="unannotated_hubs",
                          command=f"atlas analyze unannotated-hubs {projection.scope.command_flags()} {rule.flags()}")


def hubs(graph: Graph, scope: Scope, rule: HubRule = DEFAULT_RULE, top: int = 20, betweenness: bool = True,
         write: bool = False, free_bytes: int | None = None) -> AnalysisResult:
    """Rank the features of a scope by degree, PageRank and betweenness; classify hubs; optionally write them back.
    ``free_bytes``: the heap budget of the memory checks instead of the server's free heap (see ``projected``)."""
    with projected(graph, scope, free_bytes) as projection:
        table = hub_table(projection, rule, betweenness=betweenness)
        result = hubs_from_table(table, projection, rule, top)
    if write:
        result.summary["written"] = write_hubs(graph, scope.key, table)
    return result


def unannotated_hubs(graph: Graph, scope: Scope, rule: HubRule = DEFAULT_RULE, genes: int = 5,
                     betweenness: bool = False, free_bytes: int | None = None) -> AnalysisResult:
    """Hubs of a scope that carry no annotation, with their top genes so a person can start annotating them
    (``free_bytes`` as in :func:`hubs`)."""
    with projected(graph, scope, free_bytes) as projection:
        table = hub_table(projection, rule, betweenness=betweenness)
        return unannotated_from_table(table, projection, rule, genes)


@dataclass
class HubReport:
    """Everything of the full hub report, computed on one projection."""

    degrees: AnalysisResult
    hubs: AnalysisResult
    unannotated_hubs: AnalysisResult
    features: pd.DataFrame


def hub_report(graph: Graph, scope: Scope, rule: HubRule = DEFAULT_RULE, top: int = 20, genes: int = 5,
               write: bool = True, free_bytes: int | None = None) -> HubReport:
    """Degrees, PageRank, betweenness, hub classes and unannotated hubs on one projection, then the write-back
    (``free_bytes`` as in :func:`hubs`)."""
    with projected(graph, scope, free_bytes) as projection:
        table = hub_table(projection, rule, betweenness=True)
        degrees = degrees_from_projection(projection, table)
        report = HubReport(degrees, hubs_from_table(table, projection, rule, top),
                           unannotated_from_table(table, projection, rule, genes), table)
    if write:
        report.hubs.summary["written"] = write_hubs(graph, scope.key, table)
    return report

