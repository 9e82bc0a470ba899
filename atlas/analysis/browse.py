"""Read-side documents of the atlas: runs, feature documents, edge pages, neighbourhoods, genes, terms and search.

Each function returns plain, strict-JSON data (:func:`atlas.plain.plain`: no NaN or Infinity, null instead) that
the explorer's pages, its JSON API and a release exporter all use. Every edge read goes through the shard visibility
fence: a request reads the visible shard keys of its runs once (:func:`visible_keys`) and passes them to each
statement, so all parts of one answer count the same shards, each wholly or not at all.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

import queries
from atlas.analysis.scope import Q_COLUMNS
from atlas.db.connection import Graph
from atlas.errors import AtlasError
from atlas.plain import plain

MAX_PAGE = 500
MAX_NEIGHBOURHOOD = 500
MAX_HOPS = 2
DEFAULT_NEIGHBOURHOOD = 150
SEARCH_LIMIT = 25
LINKED_LIMIT = 200
EDGE_SORTS = ("abs_d", "d", "mean", "consistency", "n", "p", "q", "perm_q")
SIGNS = ("excitatory", "inhibitory")
HISTOGRAM_BINS = 20


class NotFound(AtlasError):
    """An unknown run, feature, gene or term (HTTP 404)."""


class InvalidParameter(AtlasError):
    """A parameter outside its allowed values (HTTP 422)."""


def _read(graph: Graph, name: str, **parameters: Any) -> list[dict[str, Any]]:
    return graph.read(queries.internal(name).text, **parameters)


def visible_keys(graph: Graph, runs: list[str] | None = None) -> dict[str, list[int]]:
    """Run id -> the shard keys visible now, for some runs (every run when None); unknown runs raise NotFound."""
    found = {row["run"]: row["visible"] for row in _read(graph, "explorer_visible", runs=runs)}
    missing = [run for run in runs or () if run not in found]
    if missing:
        known = ", ".join(sorted(found) or ["none"]) if runs is None else ", ".join(_known_runs(graph)) or "none"
        raise NotFound(f"no run {', '.join(map(repr, missing))} in the atlas (known runs: {known})")
    return found


def _known_runs(graph: Graph) -> list[str]:
    return [row["id"] for row in graph.read(queries.internal("known_runs").text)]


def _fence(graph: Graph, run: str | None) -> list[int]:
    """The visible shard keys of one run, or of every run when ``run`` is None."""
    keys = visible_keys(graph, [run] if run is not None else None)
    return [key for visible in keys.values() for key in visible]


def runs_overview(graph: Graph) -> list[dict[str, Any]]:
    """Every run: id, kind, model, SAE, source and downstream layers, cells, edges, shards, status, created."""
    return plain(_read(graph, "explorer_runs"))


@dataclass(frozen=True)
class RunDegrees:
    """Out- and in-degree of every feature with an edge in one run's visible shards, ranked like ``atlas analyze
    hubs`` (out-degree, then total degree, descending; then uid)."""

    run: str
    visible: tuple[int, ...]
    uid: np.ndarray
    out_degree: np.ndarray
    in_degree: np.ndarray
    positions: dict[str, int]

    @classmethod
    def read(cls, graph: Graph, run: str, visible: list[int]) -> RunDegrees:
        """Count the degrees of a run's visible edges (one pass over them through the shard index)."""
        row = _read(graph, "explorer_run_degrees", visible=visible)[0]
        uid = np.array(row["uid"], dtype=object)
        out_degree = np.array(row["out_degree"], dtype=np.int64)
        in_degree = np.array(row["in_degree"], dtype=np.int64)
        order = np.lexsort((uid.astype(str), -(out_degree + in_degree), -out_degree))
        uid = uid[order]
        return cls(run, tuple(visible), uid, out_degree[order], in_degree[order],
                   {value: index for index, value in enumerate(uid)})

    @property
    def sources(self) -> np.ndarray:
        """Out-degrees of the features with out-edges, in rank order."""
        return self.out_degree[self.out_degree > 0]

    def of(self, uid: str) -> dict[str, Any] | None:
        """Degrees, hub rank and out-degree percentile (among the run's sources) of one feature."""
        index = self.positions.get(uid)
        if index is None:
            return None
        out_degree = int(self.out_degree[index])
        sources = self.sources
        percentile = 100.0 * float(np.count_nonzero(sources <= out_degree)) / sources.size if out_degree else None
        return {"run": self.run, "out_degree": out_degree, "in_degree": int(self.in_degree[index]),
                "hub_rank": index + 1, "percentile": percentile}


class DegreeCache:
    """Run degrees kept while the run's visible shards stay the same (a load or delete changes them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], RunDegrees] = {}

    def get(self, graph: Graph, run: str, visible: list[int]) -> RunDegrees:
        """The run's degrees for exactly these visible shards, counted on first use."""
        key = (graph.settings.uri, graph.database, run)
        with self._lock:
            cached = self._entries.get(key)
        if cached is not None and cached.visible == tuple(visible):
            return cached
        degrees = RunDegrees.read(graph, run, visible)
        with self._lock:
            self._entries[key] = degrees
        return degrees


DEGREES = DegreeCache()


def _cards(graph: Graph, uids: list[str]) -> dict[str, dict[str, Any]]:
    return {row["uid"]: row for row in _read(graph, "explorer_feature_cards", uids=uids)}


def run_hubs(graph: Graph, run: str, top: int = 20, unannotated: bool = False) -> list[dict[str, Any]]:
    """The first ``top`` features of a run by hub rank (only unannotated ones when asked), with label and layer."""
    _check_range("top", top, 1, MAX_PAGE)
    degrees = DEGREES.get(graph, run, _fence(graph, run))
    hubs: list[dict[str, Any]] = []
    for start in range(0, len(degrees.uid), max(top, 100)):
        chunk = [str(uid) for uid in degrees.uid[start:start + max(top, 100)]]
        cards = _cards(graph, chunk)
        for uid in chunk:
            card = cards.get(uid, {})
            if unannotated and card.get("annotated"):
                continue
            hubs.append({**degrees.of(uid), "uid": uid, "layer": card.get("layer"), "label": card.get("label"),
                         "annotated": bool(card.get("annotated"))})
            if len(hubs) == top:
                return plain(hubs)
    return plain(hubs)


def degree_histogram(out_degrees: np.ndarray, bins: int = HISTOGRAM_BINS) -> list[dict[str, Any]]:
    """Counts of source out-degrees in equal-width bins: ``low`` inclusive, ``high`` exclusive (the last inclusive)."""
    if out_degrees.size == 0:
        return []
    counts, edges = np.histogram(out_degrees, bins=min(bins, int(out_degrees.max() - out_degrees.min()) + 1))
    return [{"low": float(low), "high": float(high), "features": int(count)}
            for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True)]


def run_document(graph: Graph, run: str, top: int = 20) -> dict[str, Any]:
    """A run at a glance: its Run node, degree summary and histogram, ranked hubs and edges per downstream layer."""
    info = next((row for row in runs_overview(graph) if row["id"] == run), None)
    if info is None:
        raise NotFound(f"no run {run!r} in the atlas (known runs: {', '.join(_known_runs(graph)) or 'none'})")
    visible = _fence(graph, run)
    degrees = DEGREES.get(graph, run, visible)
    sources = degrees.sources
    summary = {"edges": int(degrees.out_degree.sum()), "source_features": int(sources.size),
               "target_features": int(np.count_nonzero(degrees.in_degree)),
               "mean_out_degree": float(sources.mean()) if sources.size else None,
               "median_out_degree": float(np.median(sources)) if sources.size else None,
               "max_out_degree": int(sources.max()) if sources.size else None}
    attenuation = graph.read(queries.get("attenuation_counts").text, runs=[run], layers=None, max_q=None,
                             q_column="q")
    return plain({"run": info, "degrees": summary, "histogram": degree_histogram(sources),
                   "hubs": run_hubs(graph, run, top), "attenuation": attenuation})


def feature_document(graph: Graph, uid: str) -> dict[str, Any]:
    """Everything a feature page shows: the node, terms, top genes, per-run degrees and hub rank, interactions and
    steering results."""
    rows = _read(graph, "explorer_feature", uid=uid)
    if not rows:
        raise NotFound(f"no feature {uid!r} in the atlas (uids look like model/sae/L05/F0898)")
    document = rows[0]
    document["runs"] = [stats for run, visible in visible_keys(graph).items()
                        if (stats := DEGREES.get(graph, run, visible).of(uid)) is not None]
    named = queries.get("feature_redundancy")
    document["interactions"] = graph.read(named.text, **named.bind({"uid": uid}))
    return plain(document)


@dataclass(frozen=True)
class EdgeFilter:
    """Which edges of a feature, in which order, which page."""

    direction: str = "out"
    run: str | None = None
    layer: int | None = None
    sign: str | None = None
    min_abs_d: float | None = None
    max_q: float | None = None
    q_column: str = "q"
    sort: str = "abs_d"
    descending: bool = True
    limit: int = 50
    offset: int = 0

    def check(self) -> None:
        """Raise InvalidParameter for values outside their allowed sets or ranges."""
        _check_choice("direction", self.direction, ("out", "in"))
        _check_choice("sort", self.sort, EDGE_SORTS)
        _check_choice("q_column", self.q_column, Q_COLUMNS)
        if self.sign is not None:
            _check_choice("sign", self.sign, SIGNS)
        _check_range("limit", self.limit, 1, MAX_PAGE)
        _check_range("offset", self.offset, 0, None)
        for name in ("min_abs_d", "max_q"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise InvalidParameter(f"{name} must be a finite number, got {value}")


def feature_edges(graph: Graph, uid: str, edge_filter: EdgeFilter = EdgeFilter()) -> dict[str, Any]:
    """One page of a feature's downstream (out) or upstream (in) edges, with the number of all that match."""
    edge_filter.check()
    visible = _fence(graph, edge_filter.run)
    if not _read(graph, "explorer_feature_cards", uids=[uid]):
        raise NotFound(f"no feature {uid!r} in the atlas")
    row = _read(graph, "explorer_feature_edges", uid=uid, visible=visible, **vars(edge_filter))[0]
    return plain({"uid": uid, "direction": edge_filter.direction, "total": row["total"],
                   "offset": edge_filter.offset, "limit": edge_filter.limit, "edges": row["edges"]})


def neighbourhood(graph: Graph, uid: str, run: str | None = None, hops: int = 2,
                  limit: int = DEFAULT_NEIGHBOURHOOD) -> dict[str, Any]:
    """The k-hop neighbourhood (k <= 2, both directions) of a feature pruned to its ``limit`` strongest edges.

    A first-hop edge (at the feature) is as strong as its |d|; a second-hop edge (of a neighbour) as the weaker of
    its |d| and the |d| of the strongest first-hop edge reaching it, so a path is as strong as its weakest link. The
    ``limit`` strongest stay (ties: first hop first, then by element id): the graph is connected to the feature by
    construction and holds ``limit`` edges whenever the neighbourhood has that many.
    """
    _check_range("hops", hops, 1, MAX_HOPS)
    _check_range("limit", limit, 1, MAX_NEIGHBOURHOOD)
    visible = _fence(graph, run)
    center = _cards(graph, [uid])
    if not center:
        raise NotFound(f"no feature {uid!r} in the atlas")
    edges = _read(graph, "explorer_neighbourhood", uid=uid, visible=visible, hops=hops, limit=limit)
    uids = sorted({uid} | {edge[end] for edge in edges for end in ("source", "target")})
    cards = {**center, **_cards(graph, uids)}
    nodes = [{"uid": node, "layer": cards[node]["layer"], "label": cards[node]["label"],
              "annotated": bool(cards[node]["annotated"]), "center": node == uid} for node in uids]
    return plain({"uid": uid, "run": run, "hops": hops, "limit": limit, "nodes": nodes, "edges": edges})


def gene_document(graph: Graph, gene_id: str) -> dict[str, Any]:
    """A gene (by id or symbol) with the features whose top genes include it and the terms it belongs to."""
    rows = _read(graph, "explorer_gene", id=gene_id, limit=LINKED_LIMIT)
    if not rows:
        raise NotFound(f"no gene {gene_id!r} in the atlas (give an Ensembl id or a symbol)")
    return plain(rows[0])


def term_document(graph: Graph, term_id: str) -> dict[str, Any]:
    """A term (by id) with the features enriched in it."""
    rows = _read(graph, "explorer_term", id=term_id, limit=LINKED_LIMIT)
    if not rows:
        raise NotFound(f"no term {term_id!r} in the atlas (term ids look like GO:0006955)")
    return plain(rows[0])


def search(graph: Graph, text: str, limit: int = SEARCH_LIMIT) -> dict[str, Any]:
    """Features by uid or label, genes by symbol or id, terms by id or name: case-insensitive parts of ``text``."""
    text = text.strip()
    if not text:
        raise InvalidParameter("search text is empty: give part of a uid, label, gene symbol or term name")
    _check_range("limit", limit, 1, MAX_PAGE)
    return plain({"q": text, **_read(graph, "explorer_search", q=text, limit=limit)[0]})


def _check_range(name: str, value: int, low: int, high: int | None) -> None:
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise InvalidParameter(f"{name} must be {bound}, got {value}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InvalidParameter(f"{name} must be one of {', '.join(choices)}, got {value!r}")
