"""Write-back of hub analyses: centralities, hub class and rank onto the feature nodes of one scope."""

from __future__ import annotations

import pandas as pd

import queries
from atlas.db.connection import Graph
from atlas.plain import records
from loaders.schema import apply_schema

WRITE_BATCH = 5000
COLUMNS = ["uid", "hub", "hub_rank", "out_degree", "in_degree", "pagerank", "betweenness"]


def write_hubs(graph: Graph, scope_key: str, table: pd.DataFrame) -> int:
    """Replace the hub properties written under ``hub_scope = scope_key`` with ``table``'s; return the rows."""
    apply_schema(graph)  # the (hub_scope, hub) index behind the fast hub queries
    graph.write(queries.internal("hub_clear").text, scope=scope_key)
    rows = records(table[COLUMNS])
    statement = queries.internal("hub_write").text
    for start in range(0, len(rows), WRITE_BATCH):
        graph.write(statement, scope=scope_key, rows=rows[start:start + WRITE_BATCH])
    return len(rows)
