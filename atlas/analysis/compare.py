"""Selective vs exhaustive: compare two runs' edge counts, densities, shared edges and hubs."""

from __future__ import annotations

import shlex

import pandas as pd

import queries
from atlas.analysis.attenuation import attenuation_table
from atlas.analysis.degrees import degree_table
from atlas.analysis.hubs import DEFAULT_RULE, HubRule
from atlas.analysis.projection import projected
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope, resolve_scope
from atlas.db.connection import Graph
from atlas.errors import AtlasError


def _degrees(graph: Graph, scope: Scope) -> pd.DataFrame:
    with projected(graph, scope) as projection:
        table = degree_table(projection)
    return table.loc[table["out_degree"] > 0, ["uid", "out_degree"]].set_index("uid")["out_degree"]


def run_row(scope: Scope, out_degree: pd.Series, layers: pd.DataFrame) -> dict:
    """Edges, traced sources, downstream layers and per-feature density (edges per source and downstream layer)."""
    downstream = len(layers)
    edges = int(out_degree.sum())
    return {"run": scope.runs[0], "edges": edges, "sources_with_edges": len(out_degree),
            "downstream_layers": downstream, "edges_per_source": edges / max(1, len(out_degree)),
            "density_per_layer": edges / max(1, len(out_degree) * downstream)}


def hub_status(degrees_a: pd.Series, degrees_b: pd.Series, rule: HubRule) -> pd.DataFrame:
    """Hubs of either run with their degree in both and where they are present."""
    table = pd.DataFrame({"degree_a": degrees_a, "degree_b": degrees_b}).fillna(0).astype("int64")
    table.index.name = "uid"
    table = table.reset_index()
    for column, degree in (("hub_a", "degree_a"), ("hub_b", "degree_b")):
        table[column] = rule.classify(pd.DataFrame({"out_degree": table[degree]})) & (table[degree] > 0)
    hubs = table[table["hub_a"] | table["hub_b"]].copy()
    hubs["status"] = [
        "hub in both" if a and b else
        ("hub in A only" + (", not traced in B" if db == 0 else "")) if a else
        ("hub in B only" + (", not traced in A" if da == 0 else ""))
        for a, b, da, db in zip(hubs["hub_a"], hubs["hub_b"], hubs["degree_a"], hubs["degree_b"], strict=True)]
    return hubs.sort_values(["status", "degree_b", "degree_a"], ascending=[True, False, False], ignore_index=True)


def compare(graph: Graph, run_a: str, run_b: str, layers: list[int] | None = None,
            rule: HubRule = DEFAULT_RULE) -> AnalysisResult:
    """Compare run A (e.g. selective) with run B (e.g. exhaustive): expansion factor, densities normalised by
    downstream layers, edge overlap, and hubs present in one run and missing in the other."""
    if rule.by != "out_degree":
        raise AtlasError("compare classifies hubs by out_degree; use --by out_degree")
    if run_a == run_b:
        raise AtlasError("compare needs two different runs")
    scope_a, scope_b = resolve_scope(graph, [run_a], layers), resolve_scope(graph, [run_b], layers)
    degrees_a, degrees_b = _degrees(graph, scope_a), _degrees(graph, scope_b)
    layers_a, layers_b = attenuation_table(graph, scope_a), attenuation_table(graph, scope_b)
    runs = pd.DataFrame([run_row(scope_a, degrees_a, layers_a), run_row(scope_b, degrees_b, layers_b)])
    shared = graph.read(queries.internal("edge_overlap").text, run_a=run_a, run_b=run_b,
                        layers=list(scope_a.layers) if scope_a.layers else None)[0]["shared"]
    edges_a, edges_b = int(runs["edges"].iloc[0]), int(runs["edges"].iloc[1])
    hubs = hub_status(degrees_a, degrees_b, rule)
    summary = {"run_a": run_a, "run_b": run_b, "edges_a": edges_a, "edges_b": edges_b,
               "expansion_factor": edges_b / edges_a if edges_a else float("nan"),
               "density_ratio": runs["density_per_layer"].iloc[1] / runs["density_per_layer"].iloc[0],
               "shared_edges": shared, "shared_of_a": shared / edges_a if edges_a else float("nan"),
               "shared_of_b": shared / edges_b if edges_b else float("nan"),
               "jaccard": shared / (edges_a + edges_b - shared) if edges_a + edges_b else float("nan"),
               "hub_rule": rule.describe(), "hubs_a": int(hubs["hub_a"].sum()), "hubs_b": int(hubs["hub_b"].sum()),
               "hubs_in_both": int((hubs["hub_a"] & hubs["hub_b"]).sum())}
    per_layer = pd.concat([layers_a, layers_b], ignore_index=True)[["run", "layer", "edges", "share"]]
    flags = " ".join(f"--layer {layer}" for layer in scope_a.layers or ())
    return AnalysisResult("compare", f"{run_a} vs {run_b}", summary,
                          {"runs": runs, "layers": per_layer, "hubs": hubs}, main="runs",
                          command=f"atlas analyze compare {shlex.join([run_a, run_b])} {flags} {rule.flags()}".replace(
                              "  ", " "))
