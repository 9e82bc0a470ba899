"""Summaries of experiment tables across sets and features (pandas only: the report and the CLI use them)."""

from __future__ import annotations

import pandas as pd


def order_overview(orders: pd.DataFrame) -> pd.DataFrame:
    """Per selection kind and subset order, over sets: how many, mean effects and median redundancy."""
    columns = ["selection", "order", "n_sets", "mean_n_effects", "mean_abs_d", "median_redundancy"]
    if orders.empty:
        return pd.DataFrame(columns=columns)
    grouped = orders.groupby(["selection", "order"], sort=True)
    overview = grouped.agg(n_sets=("set_id", "nunique"), mean_n_effects=("n_effects", "mean"),
                           mean_abs_d=("mean_abs_d", "mean"), median_redundancy=("median_redundancy", "median"))
    return overview.reset_index()[columns]


def layer_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Directionality per layer and alpha: steered features, share pushing toward late, mean fraction positive."""
    columns = ["layer", "alpha", "n_features", "fraction_toward_late", "mean_fraction_positive", "mean_ds"]
    measured = results.dropna(subset=["mean_ds"])
    if measured.empty:
        return pd.DataFrame(columns=columns)
    grouped = measured.groupby(["layer", "alpha"])
    summary = grouped.agg(n_features=("feature", "size"), mean_fraction_positive=("fraction_positive", "mean"),
                          mean_ds=("mean_ds", "mean"))
    summary["fraction_toward_late"] = grouped["mean_ds"].apply(lambda values: float((values > 0).mean()))
    return summary.reset_index()[columns]
