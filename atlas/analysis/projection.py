"""Named GDS projections of a scope, created inside a context that always drops them (also on error).

Every projection, the built-in analyses' and the analysts' (``Atlas.project``, ``atlas gds``), holds exactly the
scope's visible edges, in one form: ``(:Feature {layer})-[:AFFECTS]->(:Feature {layer})``. Two ways make it:

- GDS's native projection (every Feature, every AFFECTS edge: it reads the store directly, in parallel), when that
  is exactly the scope: no layer or q-value restriction, every shard of the scope's runs visible, and the stored
  AFFECTS edges (the count store) as many as the scope's runs recorded, so no other run, hidden shard or
  half-loaded shard has an edge. Features without any edge are filtered out in memory, and the check is made
  again after projecting (a load that began meanwhile sends the scope to the Cypher projection).
- Otherwise the graphdatascience client's Cypher projection of the one fenced statement ``project_scope``.

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

# The in-memory node property counting a feature's edges, used only to filter out features without any.
_EDGES_PROPERTY = "atlasEdges"


@dataclass(frozen=True)
class MemoryCheck:
    """The estimate made before projecting, and the free heap it was compared with."""

    node_count: int
    relationship_count: int
    required_bytes: int
    free_bytes: int


@dataclass(frozen=True)
class Projection:
    """A live GDS graph of one scope: its name, size, how it was made (``native``: GDS's native projection, else the
    Cypher projection), the client's handle on it (``gds_graph``, for
    ``graph.gds.<algorithm>.stream(gds_graph)``), the memory check made before it (``memory``, with
    ``free_bytes``: the free heap a caller gave instead of the server's, or None) and helpers to run the internal
    streaming statements on it and to check an algorithm's memory before running it."""

    graph: Graph
    scope: Scope
    name: str
    node_count: int
    relationship_count: int
    native: bool
    gds_graph: GdsGraph
    memory: MemoryCheck
    free_bytes: int | None = None

    def stream(self, statement: str, **parameters: Any) -> list[dict[str, Any]]:
        """Run the internal statement ``statement`` (a GDS stream over this projection) and return its rows."""
        return self.graph.read_values(queries.internal(statement).text, graph_name=self.name, **parameters)

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


@dataclass(frozen=True)
class NativeScope:
    """What makes GDS's native projection exactly a scope: the edges it must hold, and whether features without
    any AFFECTS edge (which it would include) must be filtered out."""

    edges: int
    features_without_edges: int


def free_heap_bytes(graph: Graph) -> int:
    """Maximum minus used JVM heap of the server (an estimate: used heap includes collectable garbage)."""
    heap = graph.read(queries.internal("server_heap").text)[0]
    return int(heap["max"]) - int(heap["used"])


def layers_by_node_id(graph: Graph) -> list[int | None]:
    """The layer of each feature, indexed by the feature's internal node id (None where a node id is no feature)."""
    columns = graph.read_values(queries.internal("feature_layers").text)[0]
    layers: list[int | None] = [None] * (max(columns["node_id"], default=-1) + 1)
    for node_id, layer in zip(columns["node_id"], columns["layer"], strict=True):
        layers[node_id] = layer
    return layers


def native_scope(graph: Graph, scope: Scope) -> NativeScope | None:
    """The scope's edge count when GDS's native projection of every Feature and AFFECTS edge holds exactly its
    visible edges (see the module's docstring); None when only the Cypher projection is exact."""
    if scope.layers or scope.max_q is not None:
        return None
    state = graph.read(queries.internal("native_scope").text, runs=list(scope.runs))[0]
    if state["whole_runs"] < len(scope.runs) or state["stored"] != state["recorded"]:
        return None
    return NativeScope(state["stored"], state["features_without_edges"])


def relationship_projection(weighted_undirected: bool = False) -> dict[str, dict[str, Any]]:
    """The relationship projection a scope's projection has (one type, AFFECTS), in the form GDS can estimate.
    (The native projection of a graph with featureless nodes briefly holds the whole label too, before filtering.)"""
    shape: dict[str, Any] = {"type": "AFFECTS", "orientation": "UNDIRECTED" if weighted_undirected else "NATURAL"}
    if weighted_undirected:
        shape["properties"] = "d"  # weight = |d|: one double per edge
    return {"AFFECTS": shape}


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
    estimate = graph.read(queries.internal("projection_estimate").text, node_count=size["nodes"],
                          relationship_count=size["relationships"],
                          relationship_projection=relationship_projection(weighted_undirected))[0]
    free = free_heap_bytes(graph) if free_bytes is None else free_bytes
    check = MemoryCheck(size["nodes"], size["relationships"], int(estimate["bytes_max"]), free)
    if check.required_bytes > check.free_bytes:
        raise heap_refusal(f"projecting scope {scope.key} ({check.relationship_count:,} edges, "
                           f"up to {check.node_count:,} features)", check.required_bytes, check.free_bytes)
    return check


@contextmanager
def projected(graph: Graph, scope: Scope, free_bytes: int | None = None, weighted_undirected: bool = False,
              native: bool = True) -> Iterator[Projection]:
    """Project the scope's AFFECTS edges into a GDS graph named after the scope; drop it on exit, whatever happens.

    ``free_bytes`` overrides the server's free heap in the memory checks of the projection and of the algorithms
    run on it (tests, or a budget lower than the heap). ``weighted_undirected`` projects the edges undirected with
    ``weight`` = |d| (community detection; always the Cypher projection, which computes |d|). ``native=False`` makes
    the Cypher projection even where the native one is exact (to compare the two).
    """
    memory = check_memory(graph, scope, free_bytes, weighted_undirected)
    name = scope.projection_name()
    try:
        with translate_errors(graph.settings):
            made = ((native and not weighted_undirected and project_native(graph, scope, name))
                    or project_cypher(graph, scope, name, weighted_undirected))
        yield Projection(graph, scope, name, *made, memory, free_bytes)
    except BaseException:
        # The original error matters more than a failed clean-up (e.g. when the server went away).
        with suppress(Exception):
            drop(graph, name)
        raise
    drop(graph, name)


def project_cypher(graph: Graph, scope: Scope, name: str, weighted_undirected: bool = False
                   ) -> tuple[int, int, bool, GdsGraph]:
    """Project the scope through the fenced Cypher statement ``project_scope``: node count, relationship count,
    False (not native) and the client's handle."""
    gds_graph, result = graph.gds.graph.project.cypher(
        queries.internal("project_scope").text, graph_name=name, weighted_undirected=weighted_undirected,
        layers_by_node_id=layers_by_node_id(graph), **scope.parameters())
    return result.node_count, result.relationship_count, False, gds_graph


def project_native(graph: Graph, scope: Scope, name: str) -> tuple[int, int, bool, GdsGraph] | None:
    """Project the scope through GDS's native projection (as :func:`project_cypher` returns it), or return None,
    leaving nothing behind, when that would not be exactly the scope's visible edges."""
    expected = native_scope(graph, scope)
    if expected is None:
        return None
    # With features that have no edge, the whole label is projected under a temporary name and filtered in memory.
    whole = f"{name}.all" if expected.features_without_edges else name
    try:
        gds_graph, projected_whole = graph.gds.graph.project.native(
            whole, {"Feature": {"properties": ["layer"]}}, "AFFECTS")
        size = (projected_whole.node_count, projected_whole.relationship_count)
        if expected.features_without_edges:
            graph.gds.degree.mutate(gds_graph, mutate_property=_EDGES_PROPERTY, orientation="UNDIRECTED")
            gds_graph, filtered = graph.gds.graph.filter(gds_graph, name, f"n.{_EDGES_PROPERTY} > 0.0", "*")
            graph.gds.graph.node_properties.drop(gds_graph, [_EDGES_PROPERTY])
            size = (filtered.node_count, filtered.relationship_count)
    finally:
        if whole != name:
            drop(graph, whole)
    if size[1] != expected.edges or native_scope(graph, scope) != expected:
        drop(graph, name)  # a load or a delete changed the graph while it was read
        return None
    return *size, True, gds_graph


def drop(graph: Graph, name: str) -> None:
    """Drop a projection by name; no error when it does not exist."""
    graph.read(queries.internal("drop_projection").text, graph_name=name)


def projection_names(graph: Graph) -> list[str]:
    """The names of the GDS projections that exist now."""
    return [row["graph_name"] for row in graph.read(queries.internal("list_projections").text)]
