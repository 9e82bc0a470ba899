"""The analysts' workbench: the atlas from a notebook, through the same library calls the CLI makes.

::

    import atlas
    a = atlas.connect()                      # the managed server, or NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD
    a.runs()                                 # pandas tables
    hubs = a.hubs("L5-exhaustive").table     # every built-in analysis, as the tables the CLI prints
    with a.project("L5-exhaustive") as G:    # a fenced GDS projection of exactly the run's visible edges
        modules = a.gds.leiden.stream(G)     # any algorithm of the graphdatascience client
    # the projection is dropped here, also after an error

Nothing here imports torch; ``to_networkx`` is the one user of NetworkX in the product.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pandas as pd

import queries
from atlas.analysis.hubs import DEFAULT_RULE, HubRule
from atlas.analysis.projection import projected
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope, resolve_scope
from atlas.db.connection import ConnectionSettings, Graph
from atlas.db.connection import connect as connect_graph

if TYPE_CHECKING:
    import networkx as nx
    import pyarrow as pa
    from graphdatascience import Graph as GdsGraph
    from graphdatascience import GraphDataScience

Runs = str | Sequence[str]
Layers = int | Sequence[int] | None
EDGE_COLUMNS = ["run", "source", "target", "source_layer", "target_layer", "d", "mean", "std", "consistency", "n",
                "p", "q", "sign", "perm_p", "perm_q"]
FEATURE_COLUMNS = ["uid", "model", "sae", "layer", "index", "activation_freq", "annotated", "label"]


def _list(value: Any) -> list:
    return [value] if isinstance(value, (str, int)) else list(value)


class Atlas:
    """One connection to an atlas: tables, graphs, the graphdatascience client and every built-in analysis.

    Each method takes ``runs`` (one run id or several, analysed together) and optional downstream ``layers``.
    """

    def __init__(self, graph: Graph):
        self.graph = graph

    @property
    def gds(self) -> GraphDataScience:
        """An authenticated graphdatascience client on the same server and database."""
        return self.graph.gds

    def scope(self, runs: Runs, layers: Layers = None, max_q: float | None = None, q_column: str = "q") -> Scope:
        """The checked scope of some runs and layers, optionally only edges whose ``q_column`` (``q`` or ``perm_q``)
        is at most ``max_q`` (unknown runs or layers, or ``perm_q`` of an uncalibrated run, raise one AtlasError)."""
        return resolve_scope(self.graph, _list(runs), _list(layers) if layers is not None else None, max_q, q_column)

    def runs(self) -> pd.DataFrame:
        """Every run: id, kind, model, sae, source and downstream layers, cells, status, edges, creation time."""
        return pd.DataFrame(self.graph.read(queries.internal("runs_overview").text),
                            columns=["id", "kind", "model", "sae", "source_layer", "downstream_layers", "n_cells",
                                     "status", "edge_count", "created_at"])

    def features(self, runs: Runs | None = None, layers: Layers = None) -> pd.DataFrame:
        """Features with their catalog properties: all, or those of the layers a scope touches (its runs' source
        layers and its downstream layers)."""
        chosen = None
        if runs is not None:
            scope = self.scope(runs, layers)
            chosen = sorted(set(scope.source_layers) | set(scope.downstream_layers))
        elif layers is not None:
            chosen = _list(layers)
        rows = self.graph.read(queries.internal("features_of_layers").text, layers=chosen)[0]["rows"]
        return pd.DataFrame(rows, columns=FEATURE_COLUMNS).sort_values("uid", ignore_index=True)

    def edges(self, runs: Runs, layers: Layers = None, min_abs_d: float | None = None, max_q: float | None = None,
              q_column: str = "q", arrow: bool = False) -> pd.DataFrame | pa.Table:
        """The scope's visible AFFECTS edges with their statistics, perm_p/perm_q null until the run is calibrated
        (pandas, or a pyarrow Table with ``arrow``)."""
        scope = self.scope(runs, layers, max_q, q_column)
        rows = self.graph.read(queries.internal("scope_edges").text, min_abs_d=min_abs_d,
                               **scope.parameters())[0]["rows"]
        table = pd.DataFrame(rows, columns=EDGE_COLUMNS)
        if arrow:
            import pyarrow as pa

            return pa.Table.from_pandas(table, preserve_index=False)
        return table

    def to_networkx(self, runs: Runs, layers: Layers = None) -> nx.MultiDiGraph:
        """The scope as a NetworkX multigraph: nodes are feature uids (with layer and label), one edge per AFFECTS
        edge keyed by its run, with d, mean, std, consistency, n, p and q."""
        import networkx as nx

        edges = self.edges(runs, layers)
        network = nx.MultiDiGraph()
        uids = pd.unique(pd.concat([edges["source"], edges["target"]]))
        features = self.features(layers=sorted(set(edges["source_layer"]) | set(edges["target_layer"])))
        features = features.set_index("uid").reindex(uids)
        network.add_nodes_from((uid, {"layer": row["layer"], "label": row["label"]})
                               for uid, row in features.iterrows())
        attributes = ["d", "mean", "std", "consistency", "n", "p", "q"]
        network.add_edges_from(
            (source, target, run, dict(zip(attributes, values, strict=True)))
            for source, target, run, *values in edges[["source", "target", "run", *attributes]].itertuples(
                index=False, name=None))
        return network

    @contextmanager
    def project(self, runs: Runs, layers: Layers = None, weighted_undirected: bool = False) -> Iterator[GdsGraph]:
        """A graphdatascience ``Graph`` of exactly the scope's visible edges (features with their ``layer``
        property, relationship type ``AFFECTS``), after a memory check; dropped on exit and on error.
        ``weighted_undirected`` projects the edges undirected with ``weight`` = |d|."""
        with projected(self.graph, self.scope(runs, layers), weighted_undirected=weighted_undirected) as projection:
            yield projection.gds_graph

    def degrees(self, runs: Runs, layers: Layers = None) -> AnalysisResult:
        """`atlas analyze degrees`: degree distributions overall and per downstream layer."""
        from atlas.analysis.degrees import degrees

        return degrees(self.graph, self.scope(runs, layers))

    def hubs(self, runs: Runs, layers: Layers = None, rule: HubRule = DEFAULT_RULE, top: int = 20,
             betweenness: bool = True, write: bool = False) -> AnalysisResult:
        """`atlas analyze hubs`: features ranked by degree, PageRank and betweenness, with hub classes."""
        from atlas.analysis.hubs import hubs

        return hubs(self.graph, self.scope(runs, layers), rule, top=top, betweenness=betweenness, write=write)

    def unannotated_hubs(self, runs: Runs, layers: Layers = None, rule: HubRule = DEFAULT_RULE,
                         genes: int = 5) -> AnalysisResult:
        """`atlas analyze unannotated-hubs`: hubs without annotation, with their top genes."""
        from atlas.analysis.hubs import unannotated_hubs

        return unannotated_hubs(self.graph, self.scope(runs, layers), rule, genes=genes)

    def powerlaw(self, runs: Runs, layers: Layers = None, direction: str = "out",
                 xmin: float | None = None) -> AnalysisResult:
        """`atlas analyze powerlaw`: Clauset-Shalizi-Newman fit and comparison with the alternatives."""
        from atlas.analysis.heavy_tail import heavy_tail

        return heavy_tail(self.graph, self.scope(runs, layers), direction=direction, xmin=xmin)

    def bias(self, runs: Runs, layers: Layers = None, top: int = 20) -> AnalysisResult:
        """`atlas analyze bias`: annotation bias of the top hubs, raw and frequency-adjusted."""
        from atlas.analysis.bias import bias

        return bias(self.graph, self.scope(runs, layers), top=top)

    def attenuation(self, runs: Runs, layers: Layers = None) -> AnalysisResult:
        """`atlas analyze attenuation`: edges per downstream layer and their decay."""
        from atlas.analysis.attenuation import attenuation

        return attenuation(self.graph, self.scope(runs, layers))

    def compare(self, run_a: str, run_b: str, layers: Layers = None, rule: HubRule = DEFAULT_RULE
                ) -> AnalysisResult:
        """`atlas analyze compare`: run A against run B (expansion, densities, shared edges, hubs)."""
        from atlas.analysis.compare import compare

        return compare(self.graph, run_a, run_b, _list(layers) if layers is not None else None, rule)

    def modules(self, runs: Runs, layers: Layers = None, algorithm: str = "leiden", gamma: float = 1.0,
                write: bool = False) -> AnalysisResult:
        """`atlas analyze modules`: Leiden/Louvain modules of the |d|-weighted undirected scope."""
        from atlas.analysis.modules import modules

        return modules(self.graph, self.scope(runs, layers), algorithm=algorithm, gamma=gamma, write=write)

    def similarity(self, runs: Runs, layers: Layers = None, top_k: int = 10) -> AnalysisResult:
        """`atlas analyze similarity`: target-overlap neighbours, beside ablation redundancy where measured."""
        from atlas.analysis.similarity import similarity

        return similarity(self.graph, self.scope(runs, layers), top_k=top_k)

    def run_gds(self, algorithm: str, runs: Runs, layers: Layers = None, mode: str = "stream",
                **configuration: Any) -> AnalysisResult:
        """`atlas gds`: any installed GDS algorithm on the scope's projection, joined to feature uids."""
        from atlas.analysis.algorithms import run_algorithm

        return run_algorithm(self.graph, self.scope(runs, layers), algorithm, configuration, mode)

    def close(self) -> None:
        """Close the connection."""
        self.graph.close()

    def __enter__(self) -> Atlas:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(settings: ConnectionSettings | None = None) -> Atlas:
    """An :class:`Atlas` on the managed server, or on ``NEO4J_URI``/``NEO4J_USER``/``NEO4J_PASSWORD``."""
    return Atlas(connect_graph(settings))
