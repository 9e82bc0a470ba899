"""Analysis results stored as properties on features: `atlas gds --write`, module ids of `atlas analyze modules`.

Values pass as parameters (``SET feature += map``), so a property name never enters the Cypher text; names of the
graph model's own feature properties (:data:`loaders.schema.FEATURE`) are refused so a result never overwrites a
feature's identity, catalog data or another analysis' write-back.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

import queries
from atlas.db.connection import Graph
from atlas.errors import AtlasError
from loaders.schema import FEATURE

WRITE_BATCH = 5000
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def check_property_name(name: str) -> str:
    """A property name a result may be written under: an identifier that is not one of the model's own."""
    if not _NAME.match(name):
        raise AtlasError(f"property name {name!r} must be a letter followed by letters, digits or _ (64 at most)")
    if name in FEATURE.properties:
        raise AtlasError(f"property {name!r} belongs to the graph model; choose another name "
                         f"(taken: {', '.join(FEATURE.properties)})")
    return name


def _value(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and not math.isfinite(value) else value


def write_feature_properties(graph: Graph, table: pd.DataFrame, properties: dict[str, str]) -> int:
    """Set ``properties`` (property name -> column of ``table``) on the features named by ``table['uid']``;
    return the number of rows written. NaN becomes a removed property."""
    rows = [{"uid": uid, "properties": {name: _value(values[column]) for name, column in properties.items()}}
            for uid, values in zip(table["uid"], table[list(properties.values())].to_dict(orient="records"),
                                   strict=True)]
    statement = queries.internal("feature_properties_write").text
    for start in range(0, len(rows), WRITE_BATCH):
        graph.write(statement, rows=rows[start:start + WRITE_BATCH])
    return len(rows)
