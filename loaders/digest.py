"""A content fingerprint of the graph: counts per label and type plus a SHA-256 over every node and relationship.

Two loads that produce the same graph (online and offline paths, a rerun) give the same digest whatever the
internal ids or the order the database returns rows in.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from typing import Any

import queries
from atlas.db.connection import Graph


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def graph_digest(graph: Graph) -> dict[str, Any]:
    """Node counts by label, relationship counts by type, and one SHA-256 of the whole content."""
    nodes = graph.read(queries.internal("digest_nodes").text)
    relationships = graph.read(queries.internal("digest_relationships").text)
    lines = sorted(_canonical([sorted(row["labels"]), row["properties"]]) for row in nodes)
    lines += sorted(_canonical([row["type"], row["source"], row["target"], row["properties"]])
                    for row in relationships)
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return {
        "nodes": dict(sorted(Counter(label for row in nodes for label in row["labels"]).items())),
        "relationships": dict(sorted(Counter(row["type"] for row in relationships).items())),
        "sha256": digest.hexdigest(),
    }
