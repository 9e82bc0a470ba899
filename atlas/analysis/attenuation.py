"""Attenuation: how many edges each run sends into each downstream layer, and how fast that decays with depth."""

from __future__ import annotations

import numpy as np
import pandas as pd

import queries
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph


def attenuation_table(graph: Graph, scope: Scope) -> pd.DataFrame:
    """Edges per run and downstream layer, with the layer distance and the share of the run's edges."""
    rows = graph.read(queries.library()["attenuation_counts"].text, **scope.parameters())
    table = pd.DataFrame(rows, columns=["run", "layer", "edges", "excitatory"])
    sources = {info.id: info.source_layer for info in scope.run_info}
    table["distance"] = [layer - sources[run] if sources.get(run) is not None else np.nan
                         for run, layer in zip(table["run"], table["layer"], strict=True)]
    table["share"] = table["edges"] / table.groupby("run")["edges"].transform("sum")
    table["relative_to_nearest"] = table["edges"] / table.groupby("run")["edges"].transform("first")
    return table


def decay(table: pd.DataFrame) -> pd.DataFrame:
    """Per run: nearest and farthest layer, their edge ratio, and the fitted per-layer decay of the edge count
    (edges ~ exp(-rate * distance), least squares on log counts)."""
    rows = []
    for run, part in table.groupby("run", sort=True):
        part = part.sort_values("layer")
        row = {"run": run, "layers": len(part), "nearest_layer": int(part["layer"].iloc[0]),
               "farthest_layer": int(part["layer"].iloc[-1]), "nearest_edges": int(part["edges"].iloc[0]),
               "farthest_edges": int(part["edges"].iloc[-1]),
               "farthest_over_nearest": part["edges"].iloc[-1] / part["edges"].iloc[0],
               "decay_per_layer": np.nan}
        distance = part["distance"].to_numpy(dtype=float)
        if len(part) >= 2 and np.isfinite(distance).all():
            slope, _ = np.polyfit(distance, np.log(part["edges"].to_numpy(dtype=float)), 1)
            row["decay_per_layer"] = 1 - float(np.exp(slope))
        rows.append(row)
    return pd.DataFrame(rows)


def attenuation(graph: Graph, scope: Scope) -> AnalysisResult:
    """Edges per downstream layer and the decay from the nearest to the farthest layer, per run."""
    table = attenuation_table(graph, scope)
    runs = decay(table)
    summary = {"edges": int(table["edges"].sum()), "runs": len(runs)}
    if len(runs) == 1:
        summary |= {key: runs.iloc[0][key] for key in ("farthest_over_nearest", "decay_per_layer")}
    return AnalysisResult("attenuation", scope.key, summary, {"layers": table, "decay": runs}, main="layers",
                          command=f"atlas analyze attenuation {scope.command_flags()}")
