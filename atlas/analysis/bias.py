"""Annotation bias of hubs: are the top hubs annotated more often than all features, also after adjusting for how
often features fire (degree tracks activation frequency: Spearman 0.84 in the reference study)?"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

import queries
from atlas.analysis.degrees import degree_table
from atlas.analysis.hubs import feature_annotations
from atlas.analysis.projection import projected
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph
from atlas.errors import AtlasError

# The tracing default: a feature counts as active (and is traced) at activation frequency >= 0.001.
DEFAULT_MIN_ACTIVATION_FREQ = 0.001


def population(graph: Graph, scope: Scope, min_activation_freq: float = DEFAULT_MIN_ACTIVATION_FREQ) -> pd.DataFrame:
    """The traced features of a scope with their out-degree: every active feature of the runs' source layers plus
    every feature with an out-edge in scope (degree 0 for active features without edges)."""
    rows = graph.read(queries.internal("source_population").text, runs=list(scope.runs),
                      min_activation_freq=min_activation_freq)
    active = pd.DataFrame(rows, columns=["uid", "label", "annotated", "activation_freq"])
    with projected(graph, scope) as projection:
        degrees = degree_table(projection)
    sources = degrees.loc[degrees["out_degree"] > 0, ["uid", "out_degree"]]
    missing = sorted(set(sources["uid"]) - set(active["uid"]))
    if missing:
        extra = feature_annotations(graph, missing)
        active = pd.concat([active, extra.drop(columns="terms")], ignore_index=True)
    table = active.merge(sources, on="uid", how="left")
    table["out_degree"] = table["out_degree"].fillna(0).astype("int64")
    table["annotated"] = table["annotated"].eq(True)
    return table.sort_values(["out_degree", "uid"], ascending=[False, True], ignore_index=True)


def fisher_row(name: str, in_group: pd.Series, annotated: pd.Series) -> dict:
    """Fisher's exact test (two-sided) of annotation in a group of features against the rest of the population."""
    table = [[int((in_group & annotated).sum()), int((in_group & ~annotated).sum())],
             [int((~in_group & annotated).sum()), int((~in_group & ~annotated).sum())]]
    odds_ratio, p_value = stats.fisher_exact(table)
    return {"test": name, "statistic": float(odds_ratio), "p_value": float(p_value),
            "group_size": int(in_group.sum()), "annotated_in_group": table[0][0],
            "rate_group": table[0][0] / max(1, int(in_group.sum())), "rate_all": float(annotated.mean())}


def _residual(values: np.ndarray, covariate: np.ndarray) -> np.ndarray:
    """Residual of an ordinary least-squares fit of values on [1, covariate]."""
    design = np.column_stack([np.ones_like(covariate), covariate])
    coefficients, *_ = np.linalg.lstsq(design, values, rcond=None)
    return values - design @ coefficients


def top_group(scores: pd.Series, top: int) -> pd.Series:
    """True for the ``top`` rows with the highest score (the table is already ordered for ties)."""
    order = np.argsort(-scores.to_numpy(), kind="stable")[:top]
    group = np.zeros(len(scores), dtype=bool)
    group[order] = True
    return pd.Series(group, index=scores.index)


def bias_from_population(table: pd.DataFrame, scope: Scope, top: int) -> AnalysisResult:
    """Fisher tests (raw and frequency-adjusted top hubs), Spearman degree-frequency, partial correlation."""
    if len(table) <= top:
        raise AtlasError(f"bias needs more features than --top {top}; scope {scope.key} has {len(table)}")
    annotated = table["annotated"]
    rows = [fisher_row(f"fisher: top {top} by out-degree", top_group(table["out_degree"], top), annotated)]
    notes = []
    with_freq = table[table["activation_freq"].notna() & (table["activation_freq"] > 0)].copy()
    if len(with_freq) > 3:
        log_degree = np.log1p(with_freq["out_degree"].to_numpy(dtype=float))
        log_freq = np.log(with_freq["activation_freq"].to_numpy(dtype=float))
        with_freq["adjusted_degree"] = _residual(log_degree, log_freq)
        table = table.merge(with_freq[["uid", "adjusted_degree"]], on="uid", how="left")
        rho, rho_p = stats.spearmanr(with_freq["out_degree"], with_freq["activation_freq"])
        rows.append({"test": "spearman: out-degree vs activation frequency", "statistic": float(rho),
                     "p_value": float(rho_p), "group_size": len(with_freq)})
        adjusted_group = top_group(with_freq["adjusted_degree"], top)
        rows.append(fisher_row(f"fisher: top {top} by frequency-adjusted degree", adjusted_group,
                               with_freq["annotated"]))
        annotation_residual = _residual(with_freq["annotated"].to_numpy(dtype=float), log_freq)
        degree_residual = _residual(log_degree, log_freq)
        r, _ = stats.pearsonr(annotation_residual, degree_residual)
        df = len(with_freq) - 3
        t = r * np.sqrt(df / max(1e-300, 1 - r * r))
        rows.append({"test": "partial correlation: annotated ~ log degree | log frequency", "statistic": float(r),
                     "p_value": float(2 * stats.t.sf(abs(t), df)), "group_size": len(with_freq)})
    else:
        table["adjusted_degree"] = np.nan
        notes.append("no activation frequencies on the features: the frequency-adjusted tests were skipped")
    tests = pd.DataFrame(rows)
    summary = {"features": len(table), "annotated_rate": float(annotated.mean()), "top": top,
               "top_annotated_rate": tests.iloc[0]["rate_group"], "fisher_p": tests.iloc[0]["p_value"]}
    return AnalysisResult("bias", scope.key, summary, {"tests": tests, "features": table}, main="tests",
                          command=f"atlas analyze bias {scope.command_flags()} --top {top}", notes=notes)


def bias(graph: Graph, scope: Scope, top: int = 20,
         min_activation_freq: float = DEFAULT_MIN_ACTIVATION_FREQ) -> AnalysisResult:
    """Annotation rate of the top hubs against all traced features, raw and adjusted for activation frequency."""
    return bias_from_population(population(graph, scope, min_activation_freq), scope, top)
