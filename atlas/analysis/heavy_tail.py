"""Heavy tails of the degree distribution: Clauset-Shalizi-Newman power-law fit and likelihood-ratio comparisons
against the usual alternatives, with the `powerlaw` package."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import powerlaw

from atlas.analysis.degrees import ccdf, degree_table
from atlas.analysis.projection import projected
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph
from atlas.errors import AtlasError

ALTERNATIVES = ("lognormal", "exponential", "stretched_exponential", "truncated_power_law")
DIRECTIONS = {"out": "out_degree", "in": "in_degree", "total": "degree"}
SIGNIFICANCE = 0.1  # Clauset et al. call a likelihood-ratio sign meaningful when its p-value is below 0.1


def fit(values: np.ndarray, xmin: float | None = None) -> powerlaw.Fit:
    """The discrete CSN fit of positive integer values (xmin chosen by minimal KS distance unless given)."""
    values = np.asarray(values)
    values = values[values > 0]
    if np.unique(values).size < 3:
        raise AtlasError(f"a tail fit needs at least 3 distinct positive degrees, got {np.unique(values).size}")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return powerlaw.Fit(values, discrete=True, xmin=xmin, verbose=False)


def comparisons(tail_fit: powerlaw.Fit) -> pd.DataFrame:
    """Normalised log-likelihood ratio R (positive favours the power law) and its p-value for each alternative."""
    rows = []
    for alternative in ALTERNATIVES:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            ratio, p_value = tail_fit.distribution_compare("power_law", alternative, normalized_ratio=True)
        verdict = "not distinguishable" if p_value >= SIGNIFICANCE else "power law" if ratio > 0 else alternative
        rows.append({"alternative": alternative, "loglikelihood_ratio": float(ratio), "p_value": float(p_value),
                     "favours": verdict})
    return pd.DataFrame(rows)


def fitted_ccdf(tail_fit: powerlaw.Fit, values: np.ndarray) -> pd.DataFrame:
    """CCDF of the fitted power law and lognormal over the tail, scaled to the whole sample (for plots)."""
    values = np.asarray(values)
    values = values[values > 0]
    tail = np.unique(values[values >= tail_fit.xmin])
    share = (values >= tail_fit.xmin).mean()
    parts = [pd.DataFrame({"model": name, "degree": tail, "ccdf": share * getattr(tail_fit, name).ccdf(tail)})
             for name in ("power_law", "lognormal")]
    return pd.concat(parts, ignore_index=True)


def tail_from_values(values: np.ndarray, scope: Scope, direction: str, xmin: float | None = None) -> AnalysisResult:
    """Fit, compare and tabulate one degree sample."""
    tail_fit = fit(values, xmin)
    positive = np.asarray(values)[np.asarray(values) > 0]
    power_law = tail_fit.power_law
    summary = {"direction": direction, "features": int(positive.size), "alpha": float(power_law.alpha),
               "alpha_standard_error": float(power_law.standard_err), "xmin": float(tail_fit.xmin),
               "tail_points": int(tail_fit.n_tail), "ks_distance": float(power_law.D)}
    tables = {"comparisons": comparisons(tail_fit), "ccdf": ccdf(positive), "fit": fitted_ccdf(tail_fit, positive)}
    flags = f"--direction {direction}" + (f" --xmin {xmin:g}" if xmin is not None else "")
    return AnalysisResult("powerlaw", scope.key, summary, tables, main="comparisons",
                          command=f"atlas analyze powerlaw {scope.command_flags()} {flags}")


def heavy_tail(graph: Graph, scope: Scope, direction: str = "out", xmin: float | None = None) -> AnalysisResult:
    """CSN power-law fit of the scope's out-, in- or total degrees, compared with lognormal, exponential,
    stretched exponential and truncated power law."""
    if direction not in DIRECTIONS:
        raise AtlasError(f"--direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    with projected(graph, scope) as projection:
        table = degree_table(projection)
    return tail_from_values(table[DIRECTIONS[direction]].to_numpy(), scope, direction, xmin)
