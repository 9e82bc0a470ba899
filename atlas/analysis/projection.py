"""Named GDS projections of a scope, created inside a context that always drops them (also on error).

Every projection, the built-in analyses' and the analysts' (``Atlas.project``, ``atlas gds``), goes through the
graphdatascience client's Cypher projection of the one fenced statement ``project_scope``, so it holds exactly the
scope's visible edges.

Before projecting, the size of the scope is counted and GDS estimates the memory the projection needs; before each
algorithm on it, GDS estimates that algorithm's memory with the run's configuration. When an estimate exceeds the
server's free heap, the analysis stops with a message saying what to change instead of letting the server run out of
memory, and the projection is dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from neo4j.exceptions import ClientError

import queries
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph, translate_errors
from atlas.db.memory import heap_refusal, no_estimate
from atlas.errors import AtlasError

if TYPE_CHECKING:
    from graphdatascience import Graph as GdsGraph


@dataclass(frozen=True)
class MemoryCheck:
    """The estimate made before projecting, and the free heap it was compared with."""

    node_count: int
    relationship_count: int
    required_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class Projection:
    """A live GDS graph of one scope: its name, size, the client's handle on it (``gds_graph``, for
    ``graph.gds.<algorithm>.stream(gds_graph)``), the memory check made before it (``memory``, with
    ``free_bytes``: the free heap a caller gave instead of the server's, or None) and helpers to run the internal
    streaming statements on it and to check an algorithm's memory before running it."""

    graph: Graph
    scope: Scope
    name: str
    node_count: int
    relationship_count: int
    layers: tuple[int, ...]
    gds_graph: GdsGraph
    memory: MemoryCheck
    free_bytes: int | None = None

    def stream(self, statement: str, **parameters: Any) -> list[dict[str, Any]]:
        """Run the internal statement ``statement`` (a GDS stream over this projection) and return its rows."""
        return self.graph.read(queries.internal(statement).text, graph_name=self.name, **parameters)

    def columns(self, statement: str, **parameters: Any) -> dict[str, list]:
        """Run an internal statement that aggregates a GDS stream into one row of parallel lists (one list per
        column): far cheaper to transfer than one record per node."""
        return self.stream(statement, **parameters)[0]

    def available_bytes(self) -> int:
        """The heap an algorithm on this projection may use: the server's free heap now (the projection already
        holds its share), or what the caller's ``free_bytes`` leaves after the projection's estimate."""
        if self.free_bytes is None:
            return free_heap_bytes(self.graph)
        return self.free_bytes - self.memory.required_bytes

    def estimate_bytes(self, estimate: Callable[..., Any], **configuration: Any) -> int | None:
        """GDS's estimate (upper bound, bytes) of running an algorithm on this projection: ``estimate`` is the
        graphdatascience client's endpoint (``graph.gds.leiden.estimate``), called with the run's configuration.
        None when the server has no estimate for the algorithm."""
        with translate_errors(self.graph.settings):
            try:
                return int(estimate(self.gds_graph, **configuration).bytes_max)
            except ClientError as error:
                if no_estimate(error):
                    return None  # as GDS's own guard does: nothing to compare, the algorithm still runs
                raise

    def check_algorithm(self, algorithm: str, estimate: Callable[..., Any], **configuration: Any) -> int | None:
        """Refuse in one line, before it runs, an algorithm whose GDS estimate exceeds the free heap; return the
        estimate (None when GDS has none). ``estimate`` and ``configuration`` as in :meth:`estimate_bytes`."""
        required = self.estimate_bytes(estimate, **configuration)
        if required is not None:
            free = self.available_bytes()
            if required > free:
                raise heap_refusal(f"running {algorithm} on scope {self.scope.key}", required, free)
        return required

    @staticmethod
    def relationship_type(layer: int) -> str:
        """The projected relationship type of the edges into one downstream layer."""
        return f"L{layer}"


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


def relationship_projection(scope: Scope, weighted_undirected: bool = False) -> dict[str, dict[str, Any]]:
    """The relationship types ``project_scope`` makes of a scope, as a native projection that GDS can estimate: each
    type holds its own per-feature adjacency, which dominates the memory of a scope over many downstream layers."""
    shape: dict[str, Any] = {"type": "AFFECTS", "orientation": "UNDIRECTED" if weighted_undirected else "NATURAL"}
    if weighted_undirected:
        shape["properties"] = "d"  # weight = |d|: one double per edge
    layers = scope.downstream_layers
    return {Projection.relationship_type(layer): shape for layer in layers} if layers else {"AFFECTS": shape}


def check_memory(graph: Graph, scope: Scope, free_bytes: int | None = None, weighted_undirected: bool = False
                 ) -> MemoryCheck:
    """Count the scope, ask GDS for the projection's memory estimate (its relationship types, orientation and
    weight included) and refuse when it exceeds the free heap."""
    size = graph.read(queries.internal("scope_size_recorded").text, runs=list(scope.runs))[0]
    if scope.layers or scope.max_q is not None or size["runs_with_count"] < len(scope.runs):
        # Counting the scope's edges through the relationship index costs seconds on a large run: only when the
        # loaders did not record the count, or when the layers or a q-value limit restrict the scope.
        size = graph.read(queries.internal("scope_size").text, **scope.parameters())[0]
    if size["relationships"] == 0:
        raise AtlasError(f"scope {scope.key} has no AFFECTS edges"
                         + (f" into layer(s) {', '.join(map(str, scope.layers))}" if scope.layers else ""))
    types = relationship_projection(scope, weighted_undirected)
    estimate = graph.read(queries.internal("projection_estimate").text, node_count=size["nodes"],
                          relationship_count=-(-size["relationships"] // len(types)),
                          relationship_projection=types)[0]
    free = free_heap_bytes(graph) if free_bytes is None else free_bytes
    check = MemoryCheck(size["nodes"], size["relationships"], int(estimate["bytes_max"]), free)
    if check.required_bytes > check.free_bytes:
        raise heap_refusal(f"projecting scope {scope.key} ({check.relationship_count:,} edges, "
                           f"up to {check.node_count:,} features)", check.required_bytes, check.free_bytes)
    return check


@contextmanager
def projected(graph: Graph, scope: Scope, free_bytes: int | None = None, weighted_undirected: bool = False
              ) -> Iterator[Projection]:
    """Project the scope's AFFECTS edges into a GDS graph named after the scope; drop it on exit, whatever happens.

    ``free_bytes`` overrides the server's free heap in the memory checks of the projection and of the algorithms
    run on it (tests, or a budget lower than the heap). ``weighted_undirected`` projects the edges undirected with
    ``weight`` = |d| (community detection).
    """
    memory = check_memory(graph, scope, free_bytes, weighted_undirected)
    name = scope.projection_name()
    try:
        with translate_errors(graph.settings):
            gds_graph, result = graph.gds.graph.project.cypher(
                queries.internal("project_scope").text, graph_name=name, weighted_undirected=weighted_undirected,
                types_by_node_id=relationship_types_by_node_id(graph), **scope.parameters())
        layers = tuple(sorted(int(relationship_type[1:]) for relationship_type in gds_graph.relationship_types()))
        yield Projection(graph, scope, name, result.node_count, result.relationship_count, layers, gds_graph, memory,
                         free_bytes)
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
