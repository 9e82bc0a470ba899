"""Write-back of hub analyses: centralities, hub class and rank onto the feature nodes of one scope."""

from __future__ import annotations

import pandas as pd

import queries
from atlas.db.connection import Graph
from atlas.plain import plain
from loaders.schema import apply_schema

# Features per transaction: the reference run's 17,888 in one (each commit costs about as much as writing several
# thousand features; benchmarks/README.md), a whole-model atlas's in a few.
WRITE_BATCH = 50_000
COLUMNS = ["uid", "hub", "hub_rank", "out_degree", "in_degree", "pagerank", "betweenness"]


def write_hubs(graph: Graph, scope_key: str, table: pd.DataFrame) -> int:
    """Replace the hub properties written under ``hub_scope = scope_key`` with ``table``'s; return the rows."""
    apply_schema(graph)  # the (hub_scope, hub) index behind the fast hub queries
    columns = {column: plain(table[column]) for column in COLUMNS}
    # Only features that leave the scope lose their properties; the others are overwritten in place.
    graph.write(queries.internal("hub_clear").text, scope=scope_key, keep=columns["uid"])
    statement = queries.internal("hub_write").text
    for start in range(0, len(table), WRITE_BATCH):
        graph.write(statement, scope=scope_key,
                    **{column: values[start:start + WRITE_BATCH] for column, values in columns.items()})
    return len(table)
