"""Named GDS projections of a scope, created inside a context that always drops them (also on error).

Every projection, the built-in analyses' and the analysts' (``Atlas.project``, ``atlas gds``), goes through the
graphdatascience client's Cypher projection of the one fenced statement ``project_scope``, so it holds exactly the
scope's visible edges.

Before projecting, the size of the scope is counted and GDS estimates the memory the projection needs; when that
exceeds the server's free heap, the analysis stops with a message saying what to change instead of letting the
server run out of memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import queries
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph, translate_errors
from atlas.errors import AtlasError

if TYPE_CHECKING:
    from graphdatascience import Graph as GdsGraph


@dataclass(frozen=True)
class Projection:
    """A live GDS graph of one scope: its name, size, the client's handle on it (``gds_graph``, for
    ``graph.gds.<algorithm>.stream(gds_graph)``) and helpers to run the internal streaming statements on it."""

    graph: Graph
    scope: Scope
    name: str
    node_count: int
    relationship_count: int
    layers: tuple[int, ...]
    gds_graph: GdsGraph

    def stream(self, statement: str, **parameters: Any) -> list[dict[str, Any]]:
        """Run the internal statement ``statement`` (a GDS stream over this projection) and return its rows."""
        return self.graph.read(queries.internal(statement).text, graph_name=self.name, **parameters)

    def columns(self, statement: str, **parameters: Any) -> dict[str, list]:
        """Run an internal statement that aggregates a GDS stream into one row of parallel lists (one list per
        column): far cheaper to transfer than one record per node."""
        return self.stream(statement, **parameters)[0]

    @staticmethod
    def relationship_type(layer: int) -> str:
        """The projected relationship type of the edges into one downstream layer."""
        return f"L{layer}"


@dataclass(frozen=True)
class MemoryCheck:
    """The estimate made before projecting."""

    node_count: int
    relationship_count: int
    required_bytes: int
    free_bytes: int


def human_bytes(size: float) -> str:
    """A byte count for people: ``512 B``, ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def free_heap_bytes(graph: Graph) -> int:
    """Maximum minus used JVM heap of the server (an estimate: used heap includes collectable garbage)."""
    heap = graph.read(queries.internal("server_heap").text)[0]
    return int(heap["max"]) - int(heap["used"])


def relationship_types_by_node_id(graph: Graph) -> list[str | None]:
    """The projected relationship type of the edges into each feature, indexed by the feature's internal node id
    (None where a node id is no feature)."""
    columns = graph.read(queries.internal("feature_layers").text)[0]
    types: list[str | None] = [None] * (max(columns["node_id"], default=-1) + 1)
    for node_id, relationship_type in zip(columns["node_id"], columns["relationship_type"], strict=True):
        types[node_id] = relationship_type
    return types


def check_memory(graph: Graph, scope: Scope, free_bytes: int | None = None) -> MemoryCheck:
    """Count the scope, ask GDS for the projection's memory estimate and refuse when it exceeds the free heap."""
    size = graph.read(queries.internal("scope_size_recorded").text, runs=list(scope.runs))[0]
    if scope.layers or scope.max_q is not None or size["runs_with_count"] < len(scope.runs):
        # Counting the scope's edges through the relationship index costs seconds on a large run: only when the
        # loaders did not record the count, or when the layers or a q-value limit restrict the scope.
        size = graph.read(queries.internal("scope_size").text, **scope.parameters())[0]
    if size["relationships"] == 0:
        raise AtlasError(f"scope {scope.key} has no AFFECTS edges"
                         + (f" into layer(s) {', '.join(map(str, scope.layers))}" if scope.layers else ""))
    estimate = graph.read(queries.internal("projection_estimate").text, node_count=size["nodes"],
                          relationship_count=size["relationships"])[0]
    free = free_heap_bytes(graph) if free_bytes is None else free_bytes
    check = MemoryCheck(size["nodes"], size["relationships"], int(estimate["bytes_max"]), free)
    if check.required_bytes > check.free_bytes:
        raise heap_refusal(f"projecting scope {scope.key} ({check.relationship_count:,} edges, "
                           f"up to {check.node_count:,} features)", check.required_bytes, check.free_bytes)
    return check


def heap_refusal(what: str, required_bytes: int, free_bytes: int) -> AtlasError:
    """The one-line refusal of work that needs more Neo4j heap than is free, saying what to change."""
    return AtlasError(
        f"{what} needs about {human_bytes(required_bytes)} of Neo4j heap but only {human_bytes(free_bytes)} is free: "
        "give the server more heap (ATLAS_NEO4J_HEAP=4g atlas db stop/start, or the heap of the NEO4J_URI server) "
        "or narrow the scope with --layer")


@contextmanager
def projected(graph: Graph, scope: Scope, free_bytes: int | None = None, weighted_undirected: bool = False
              ) -> Iterator[Projection]:
    """Project the scope's AFFECTS edges into a GDS graph named after the scope; drop it on exit, whatever happens.

    ``free_bytes`` overrides the server's free heap in the memory check (tests, or a budget lower than the heap).
    ``weighted_undirected`` projects the edges undirected with ``weight`` = |d| (community detection).
    """
    check_memory(graph, scope, free_bytes)
    name = scope.projection_name()
    try:
        with translate_errors(graph.settings):
            gds_graph, result = graph.gds.graph.project.cypher(
                queries.internal("project_scope").text, graph_name=name, weighted_undirected=weighted_undirected,
                types_by_node_id=relationship_types_by_node_id(graph), **scope.parameters())
        layers = tuple(sorted(int(relationship_type[1:]) for relationship_type in gds_graph.relationship_types()))
        yield Projection(graph, scope, name, result.node_count, result.relationship_count, layers, gds_graph)
    except BaseException:
        # The original error matters more than a failed clean-up (e.g. when the server went away).
        with suppress(Exception):
            drop(graph, name)
        raise
    drop(graph, name)


def drop(graph: Graph, name: str) -> None:
    """Drop a projection by name; no error when it does not exist."""
    graph.read(queries.internal("drop_projection").text, graph_name=name)


def projection_names(graph: Graph) -> list[str]:
    """The names of the GDS projections that exist now."""
    return [row["graph_name"] for row in graph.read(queries.internal("list_projections").text)]
