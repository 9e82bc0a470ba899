"""A content checksum of the whole graph: counts per label and type plus one SHA-256 over every property.

Independent of :mod:`loaders.digest` on purpose (a test of the loaders should not trust the loaders' own
fingerprint). Nodes are named by their key (``uid`` or ``id``), relationships by type, endpoints and
properties; the lines are sorted, so internal ids and row order do not matter. Properties whose value depends on
the wall clock are listed in ``volatile`` and left out.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from neo4j import RoutingControl

from atlas.db.connection import Graph

# The property maps are filtered inside the query, so the set of ignored keys is a parameter, never text.
NODES = """
MATCH (node)
RETURN labels(node) AS labels,
       [key IN keys(node) WHERE NOT key IN $volatile | [key, node[key]]] AS properties
"""
RELATIONSHIPS = """
MATCH (source)-[relationship]->(target)
RETURN type(relationship) AS type, coalesce(source.uid, source.id) AS source,
       coalesce(target.uid, target.id) AS target,
       [key IN keys(relationship) WHERE NOT key IN $volatile | [key, relationship[key]]] AS properties
"""
VOLATILE: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphChecksum:
    """Counts and content hash of a graph; equal checksums mean equal graphs (up to internal ids)."""

    nodes: dict[str, int]
    relationships: dict[str, int]
    sha256: str

    def __str__(self) -> str:
        return f"nodes={self.nodes} relationships={self.relationships} sha256={self.sha256[:16]}"


def _line(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True).encode("utf-8")


def graph_checksum(graph: Graph, volatile: tuple[str, ...] = VOLATILE) -> GraphChecksum:
    """Read every node and relationship with their properties and hash them in a canonical order."""
    nodes, relationships = (_rows(graph, query, volatile) for query in (NODES, RELATIONSHIPS))
    lines = sorted(_line([sorted(labels), sorted(properties)]) for labels, properties in nodes)
    lines += sorted(_line([kind, source, target, sorted(properties)]) for kind, source, target, properties in
                    relationships)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line + b"\n")
    return GraphChecksum(
        nodes=dict(sorted(Counter(label for labels, _ in nodes for label in labels).items())),
        relationships=dict(sorted(Counter(row[0] for row in relationships).items())),
        sha256=digest.hexdigest(),
    )


def _rows(graph: Graph, query: str, volatile: tuple[str, ...]) -> list[list[Any]]:
    # Plain value lists straight from the driver: dict records cost more than the query on a busy machine.
    records, _, _ = graph.driver.execute_query(query, {"volatile": list(volatile)}, database_=graph.database,
                                               routing_=RoutingControl.READ)
    return [record.values() for record in records]
