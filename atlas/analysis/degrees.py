"""Degree distributions of a scope: out-, in- and total degree, overall and per downstream layer (GDS degree)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from atlas.analysis.projection import Projection, projected
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph

PERCENTILES = (25, 75, 90, 99)


def node_values(projection: Projection, statement: str, column: str, node_ids: pd.Index, **parameters) -> np.ndarray:
    """One value per projected feature (in ``node_ids`` order) from a GDS stream keyed by node id."""
    columns = projection.columns(statement, **parameters)
    return pd.Series(columns[column], index=columns["node_id"], dtype=float).reindex(node_ids).to_numpy()


def out_degrees_by_layer(projection: Projection, node_ids: pd.Index, layers: tuple[int, ...],
                         out_degree: np.ndarray) -> dict[int, np.ndarray]:
    """Each projected feature's out-degree into each downstream layer (``layers``, ascending), in ``node_ids`` order:
    differences of the degrees into the layers up to each one (the last of which is the out-degree itself)."""
    rows = projection.stream("cumulative_out_degrees", layers=list(layers[:-1])) if len(layers) > 1 else []
    cumulative = {row["layer"]: pd.Series(row["degree"], index=row["node_id"]).reindex(node_ids, fill_value=0)
                  .to_numpy() for row in rows}
    per_layer, below = {}, np.zeros(len(node_ids), dtype=np.int64)
    for layer in layers:
        up_to = cumulative.get(layer, out_degree)
        per_layer[layer] = up_to - below
        below = up_to
    return per_layer


def downstream_layers(table: pd.DataFrame) -> tuple[int, ...]:
    """The layers of the features with incoming edges: the downstream layers a projection holds edges into."""
    return tuple(sorted(int(layer) for layer in table.loc[table["in_degree"] > 0, "layer"].unique()))


def degree_table(projection: Projection) -> pd.DataFrame:
    """One row per projected feature: node_id, uid, layer, out_degree, in_degree, degree, out_L<layer> per layer."""
    columns = projection.columns("projected_degrees")
    table = pd.DataFrame({name: columns[name] for name in ("node_id", "uid", "layer", "out_degree")})
    node_ids = pd.Index(table["node_id"])
    table["in_degree"] = pd.Series(columns["in_degree"], index=columns["in_node_id"]).reindex(node_ids).to_numpy()
    table["degree"] = table["out_degree"] + table["in_degree"]
    layers = downstream_layers(table)
    for layer, degrees in out_degrees_by_layer(projection, node_ids, layers, table["out_degree"].to_numpy()).items():
        table[f"out_L{layer}"] = degrees
    return table.sort_values(["out_degree", "in_degree", "uid"], ascending=[False, False, True], ignore_index=True)


def degree_table_columns(table: pd.DataFrame) -> list[str]:
    """The columns of :func:`degree_table` a degrees result shows (every one but the GDS node id)."""
    return ["uid", "layer", "out_degree", "in_degree", "degree",
            *(f"out_L{layer}" for layer in downstream_layers(table))]


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0: all equal; towards 1: concentrated in a few)."""
    values = np.sort(np.asarray(values, dtype=float))
    if values.size == 0 or values.sum() == 0:
        return float("nan")
    ranks = np.arange(1, values.size + 1)
    return float(2 * np.sum(ranks * values) / (values.size * values.sum()) - (values.size + 1) / values.size)


def describe(values: np.ndarray) -> dict[str, float]:
    """Count, mean, median, percentiles, max and Gini of a degree sample."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return {"features": 0}
    summary = {"features": int(values.size), "mean": float(values.mean()), "median": float(np.median(values))}
    summary |= {f"p{q}": float(np.percentile(values, q)) for q in PERCENTILES}
    summary |= {"max": float(values.max()), "gini": gini(values)}
    return summary


def summary_table(table: pd.DataFrame, layers: tuple[int, ...]) -> pd.DataFrame:
    """Distribution summaries: out-degree over features with out-edges, in-degree over features with in-edges,
    total over all features; each overall and per downstream layer."""
    sources = table[table["out_degree"] > 0]
    targets = table[table["in_degree"] > 0]
    rows = [{"direction": "out", "layer": "all", **describe(sources["out_degree"])},
            {"direction": "in", "layer": "all", **describe(targets["in_degree"])},
            {"direction": "total", "layer": "all", **describe(table["degree"])}]
    for layer in layers:
        rows.append({"direction": "out", "layer": f"L{layer}", **describe(sources[f"out_L{layer}"])})
        rows.append({"direction": "in", "layer": f"L{layer}",
                     **describe(targets.loc[targets["layer"] == layer, "in_degree"])})
    return pd.DataFrame(rows)


def ccdf(values: np.ndarray) -> pd.DataFrame:
    """Empirical complementary CDF: for each distinct degree k, the fraction of the sample with degree >= k."""
    values = np.sort(np.asarray(values))
    distinct, first = np.unique(values, return_index=True)
    return pd.DataFrame({"degree": distinct, "ccdf": 1.0 - first / values.size})


def ccdf_table(table: pd.DataFrame) -> pd.DataFrame:
    """CCDFs of out-degree (features with out-edges), in-degree (features with in-edges) and total degree."""
    parts = [ccdf(table.loc[table["out_degree"] > 0, "out_degree"]).assign(direction="out"),
             ccdf(table.loc[table["in_degree"] > 0, "in_degree"]).assign(direction="in"),
             ccdf(table["degree"]).assign(direction="total")]
    return pd.concat(parts, ignore_index=True)[["direction", "degree", "ccdf"]]


def degrees_from_projection(projection: Projection, table: pd.DataFrame | None = None) -> AnalysisResult:
    """Degree distributions of an existing projection (from ``table`` when its degrees are already computed)."""
    table = degree_table(projection) if table is None else table
    table, layers = table[degree_table_columns(table)], downstream_layers(table)
    summary = {"features": len(table), "edges": int(table["out_degree"].sum()),
               "features_with_out_edges": int((table["out_degree"] > 0).sum()),
               "downstream_layers": list(layers)}
    return AnalysisResult("degrees", projection.scope.key, summary,
                          {"summary": summary_table(table, layers), "features": table,
                           "ccdf": ccdf_table(table)},
                          main="summary", command=f"atlas analyze degrees {projection.scope.command_flags()}")


def degrees(graph: Graph, scope: Scope) -> AnalysisResult:
    """Out/in/total degree distributions of a scope, overall and per downstream layer."""
    with projected(graph, scope) as projection:
        return degrees_from_projection(projection)
