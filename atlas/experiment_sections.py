"""Report sections of the experiments (``atlas report``): combinatorial ablation and steering, read from the graph.

A report is scoped to trace runs; the experiments shown are those on the same model and SAE set. The builders
return ``None`` when the graph holds no such results, and never import torch.
"""

from __future__ import annotations

import shlex

import pandas as pd

import queries
from atlas.experiment_plots import fraction_positive_figure, redundancy_figure
from atlas.experiments.summaries import layer_summary, order_overview
from atlas.report_section import ReportContext, Section


def _experiment_runs(context: ReportContext, kind: str) -> list[str]:
    rows = context.graph.read(queries.internal("experiment_runs_for_scope").text, runs=list(context.scope.runs),
                              kind=kind)
    return [row["run"] for row in rows]


def _orders(sets: pd.DataFrame) -> pd.DataFrame:
    """One row per set and subset order from the sets' stored ``redundancy_by_order``."""
    rows = [{"set_id": row.set_id, "selection": row.selection, "order": order, "median_redundancy": value}
            for row in sets.itertuples() for order, value in enumerate(row.redundancy_by_order or [], start=1)]
    return pd.DataFrame(rows, columns=["set_id", "selection", "order", "median_redundancy"])


def ablation_section(context: ReportContext) -> Section | None:
    """Redundancy, interaction and additivity classes of the ablated feature sets."""
    runs = _experiment_runs(context, "ablation")
    if not runs:
        return None
    sets = pd.DataFrame(context.graph.read(queries.internal("interaction_sets").text, runs=runs))
    if sets.empty:
        return None
    orders = _orders(sets)
    by_kind = sets.groupby(["definition", "selection"]).agg(
        sets=("set_id", "size"), median_redundancy=("median_redundancy", "median"),
        median_interaction=("median_interaction", "median"), median_marginal=("median_marginal", "median"),
        fraction_subadditive=("fraction_subadditive", "mean"), fraction_additive=("fraction_additive", "mean"),
        fraction_superadditive=("fraction_superadditive", "mean")).reset_index()
    overview = order_overview(orders.assign(n_effects=float("nan"), mean_abs_d=float("nan")))
    definitions = ", ".join(sorted(sets["definition"].unique()))
    text = (f"{len(sets)} feature sets ablated in every subset ({', '.join(runs)}), {definitions} definition. "
            "Redundancy |d_S| / Σ|d_i| below 1 means the features overlap in what they do (subadditive); above 1, "
            "they act together (superadditive); medians over targets are the headline numbers. study: each "
            "condition over its own members' active positions, targets with |d| > 0.5 and consistency > 0.7 in "
            "any condition, classes at 0.8 / 1.2, interaction and marginal over |d|; whole-set: every condition "
            "over the whole set's positions, targets with |d| > min effect, signed interaction.")
    command = f"atlas ablate --load {shlex.quote(f'experiments/{runs[0]}')}"
    return Section("ablation", "Combinatorial ablation", command, text,
                   tables=[("By selection kind", by_kind),
                           ("Median redundancy by order", overview[["selection", "order", "n_sets",
                                                                    "median_redundancy"]]),
                           ("Feature sets", sets.drop(columns=["redundancy_by_order"]))],
                   figures=[("Redundancy by order", redundancy_figure(orders))])


def steering_section(context: ReportContext) -> Section | None:
    """Where steered features push cells along pseudotime, per feature and alpha and per layer."""
    runs = _experiment_runs(context, "steering")
    if not runs:
        return None
    results = pd.DataFrame(context.graph.read(queries.internal("steering_results").text, runs=runs,
                                              trace_runs=list(context.scope.runs)))
    if results.empty:
        return None
    layers = layer_summary(results)
    strongest = results.reindex(results["mean_ds"].abs().sort_values(ascending=False).index).head(context.top)
    text = (f"{results['uid'].nunique()} features steered at alphas "
            f"{', '.join(f'{a:g}' for a in sorted(results['alpha'].unique()))} ({', '.join(runs)}). ds > 0 moves "
            "a cell's output toward the late-pseudotime signature; out_degree is the feature's edge count in the "
            "report's trace runs, so hubs can be read off directly.")
    figures = [("Fraction positive by layer", fraction_positive_figure(layers))] if not layers.empty else []
    command = f"atlas steer --load {shlex.quote(f'experiments/{runs[0]}')}"
    return Section("steering", "Trajectory steering", command, text,
                   tables=[("Directionality by layer", layers),
                           (f"Strongest shifts (top {context.top} by |mean ds|)", strongest)],
                   figures=figures)
