"""Figures of experiment results: redundancy by subset order (ablation), fraction positive by layer (steering).

Like :mod:`atlas.plots`, they only draw the tables an experiment returned, on a bare matplotlib Figure.
"""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure

from atlas.plots import lines_by_group


def redundancy_figure(orders: pd.DataFrame) -> Figure:
    """Median redundancy ratio ``|d_T| / sum |d_i|`` by subset order, one line per selection kind (sets faint)."""
    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    axis = figure.subplots()
    for _, part in orders.groupby(["selection", "set_id"], sort=True):
        axis.plot(part["order"], part["median_redundancy"], color="grey", alpha=0.25, linewidth=0.8)
    for selection, part in orders.groupby("selection", sort=True):
        median = part.groupby("order")["median_redundancy"].median()
        axis.plot(median.index, median.to_numpy(), marker="o", linewidth=2, label=selection)
    axis.axhline(1.0, color="black", linestyle="--", linewidth=0.8, label="additive")
    axis.set_xticks(sorted(orders["order"].unique()))
    axis.set_xlabel("features ablated together (subset order)")
    axis.set_ylabel("median redundancy |d_S| / Σ|d_i|")
    axis.set_title("Redundancy by order (below 1: features overlap)")
    axis.legend()
    return figure


def fraction_positive_figure(layers: pd.DataFrame) -> Figure:
    """Mean fraction of cells pushed toward late pseudotime, by layer, one line per alpha."""
    figure, axis = lines_by_group(layers, "alpha", "layer", "mean_fraction_positive",
                                  label=lambda alpha: f"α = {alpha:g}")
    axis.axhline(0.5, color="black", linestyle="--", linewidth=0.8, label="no direction")
    axis.set_ylim(0, 1)
    axis.set_xlabel("layer of the steered feature")
    axis.set_ylabel("fraction of cells with ds > 0 (mean over features)")
    axis.set_title("Steering directionality by layer")
    axis.legend()
    return figure
