"""Figures of analysis results. Plots only draw the tables an analysis returned; they never query or compute stats.

Figures are built on :class:`matplotlib.figure.Figure` directly (no pyplot global state), so a server or a notebook
can draw many of them concurrently.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from atlas.analysis.result import AnalysisResult
from atlas.errors import AtlasError
from atlas.files import write_atomically

ANNOTATED, UNANNOTATED = "#1b6ca8", "#d1495b"


def _log_log(axis, title: str, xlabel: str, ylabel: str = "P(X ≥ x)") -> None:
    """Log-log axes with labels. An axis with no point positive in both coordinates (e.g. features without an
    activation frequency) stays linear and says so: matplotlib cannot place log ticks there and fails to draw."""
    points = [np.column_stack([line.get_xdata(), line.get_ydata()]) for line in axis.lines]
    points += [collection.get_offsets() for collection in axis.collections]
    if any(len(part) and (np.asarray(part, dtype=float) > 0).all(axis=1).any() for part in points):
        axis.set_xscale("log")
        axis.set_yscale("log")
    else:
        axis.text(0.5, 0.5, "no positive values to draw", transform=axis.transAxes, ha="center", va="center")
    axis.set_title(title)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.grid(True, which="major", alpha=0.3)


def degree_figure(features: pd.DataFrame, ccdf: pd.DataFrame, scope: str = "") -> Figure:
    """Histogram of out-degree (features with out-edges) and log-log CCDFs of out-, in- and total degree."""
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    histogram, tails = figure.subplots(1, 2)
    out_degree = features.loc[features["out_degree"] > 0, "out_degree"]
    histogram.hist(out_degree, bins=min(60, max(5, out_degree.nunique())), color=ANNOTATED)
    histogram.set_title(f"Out-degree {scope}".strip())
    histogram.set_xlabel("edges per source feature")
    histogram.set_ylabel("features")
    for direction, part in ccdf.groupby("direction", sort=False):
        tails.plot(part["degree"], part["ccdf"], marker=".", linestyle="none", label=direction, alpha=0.8)
    _log_log(tails, "Degree CCDF", "degree")
    tails.legend(title="degree")
    return figure


def hubs_figure(hubs: pd.DataFrame, measure: str = "out_degree", limit: int = 30) -> Figure:
    """Horizontal bars of the top features by ``measure``, coloured by annotation."""
    top = hubs.sort_values("hub_rank").head(limit).iloc[::-1]
    figure = Figure(figsize=(8, max(3.0, 0.28 * len(top) + 1)), layout="constrained")
    axis = figure.subplots()
    labels = [uid.rsplit("/", 2)[-2] + "/" + uid.rsplit("/", 1)[-1] for uid in top["uid"]]
    colours = [ANNOTATED if annotated else UNANNOTATED for annotated in top.get("annotated", [False] * len(top))]
    axis.barh(labels, top[measure], color=colours)
    axis.set_xlabel(measure.replace("_", " "))
    axis.set_title(f"Top {len(top)} features (blue: annotated, red: unannotated)")
    return figure


def unannotated_figure(unannotated: pd.DataFrame, limit: int = 30) -> Figure:
    """Bars of the unannotated hubs' out-degree."""
    return hubs_figure(unannotated.assign(annotated=False), "out_degree", limit)


def tail_figure(ccdf: pd.DataFrame, fit: pd.DataFrame, alpha: float, xmin: float) -> Figure:
    """Empirical CCDF with the fitted power law and lognormal over the tail."""
    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    axis = figure.subplots()
    axis.plot(ccdf["degree"], ccdf["ccdf"], marker="o", markersize=3, linestyle="none", color="black",
              label="empirical")
    for model, part in fit.groupby("model", sort=False):
        label = f"power law (α={alpha:.2f})" if model == "power_law" else model
        axis.plot(part["degree"], part["ccdf"], linestyle="--" if model == "power_law" else ":", label=label)
    axis.axvline(xmin, color="grey", linewidth=0.8, label=f"xmin={xmin:g}")
    _log_log(axis, "Degree tail fit (Clauset-Shalizi-Newman)", "degree")
    axis.legend()
    return figure


def lines_by_group(table: pd.DataFrame, group: str, x: str, y: str, label: Callable[[Any], str] = str,
                   size: tuple[float, float] = (6.5, 4.5)) -> tuple[Figure, Axes]:
    """A new figure with one marked line of ``y`` against ``x`` per value of ``group`` (points in ``x`` order,
    labelled ``label(value)``); the caller adds axes labels, title and legend."""
    figure = Figure(figsize=size, layout="constrained")
    axis = figure.subplots()
    for value, part in table.groupby(group, sort=True):
        part = part.sort_values(x)
        axis.plot(part[x], part[y], marker="o", label=label(value))
    return figure, axis


def attenuation_figure(layers: pd.DataFrame) -> Figure:
    """Edges per downstream layer, one line per run (log scale)."""
    figure, axis = lines_by_group(layers, "run", "layer", "edges", size=(6.5, 4.2))
    axis.set_yscale("log")
    axis.set_xlabel("downstream layer")
    axis.set_ylabel("edges")
    axis.set_title("Attenuation with depth")
    axis.set_xticks(sorted(layers["layer"].unique()))
    axis.legend(title="run")
    axis.grid(True, alpha=0.3)
    return figure


def bias_figure(features: pd.DataFrame) -> Figure:
    """Out-degree against activation frequency (log-log), coloured by annotation."""
    figure = Figure(figsize=(6.5, 4.5), layout="constrained")
    axis = figure.subplots()
    known = features[features["activation_freq"].notna() & (features["activation_freq"] > 0)]
    for annotated, colour, label in ((True, ANNOTATED, "annotated"), (False, UNANNOTATED, "unannotated")):
        part = known[known["annotated"] == annotated]
        axis.scatter(part["activation_freq"], part["out_degree"] + 1, s=8, alpha=0.6, color=colour, label=label)
    _log_log(axis, "Degree tracks firing rate", "activation frequency", "out-degree + 1")
    axis.legend()
    return figure


def compare_figure(layers: pd.DataFrame) -> Figure:
    """Edges per downstream layer of two runs side by side."""
    figure = Figure(figsize=(6.5, 4.2), layout="constrained")
    axis = figure.subplots()
    pivot = layers.pivot_table(index="layer", columns="run", values="edges", aggfunc="sum", fill_value=0)
    positions = np.arange(len(pivot.index))
    width = 0.8 / max(1, len(pivot.columns))
    for offset, run in enumerate(pivot.columns):
        axis.bar(positions + offset * width, pivot[run], width=width, label=run)
    axis.set_xticks(positions + width * (len(pivot.columns) - 1) / 2, [f"L{layer}" for layer in pivot.index])
    axis.set_ylabel("edges")
    axis.set_title("Edges per downstream layer")
    axis.legend(title="run")
    return figure


def modules_figure(members: pd.DataFrame, limit: int = 25) -> Figure:
    """Sizes of the largest modules, each bar split by the layers of its members."""
    figure = Figure(figsize=(7, 4.2), layout="constrained")
    axis = figure.subplots()
    counts = members.pivot_table(index="module", columns="layer", values="uid", aggfunc="count", fill_value=0)
    counts = counts.loc[counts.sum(axis=1).sort_values(ascending=False).index[:limit]]
    bottom = np.zeros(len(counts))
    positions = np.arange(len(counts))
    for layer in counts.columns:
        axis.bar(positions, counts[layer], bottom=bottom, label=f"L{layer}")
        bottom += counts[layer].to_numpy()
    axis.set_xticks(positions, [str(module) for module in counts.index])
    axis.set_xlabel("module")
    axis.set_ylabel("features")
    axis.set_title("Circuit modules by size and layer")
    axis.legend(title="layer")
    return figure


def similarity_figure(pairs: pd.DataFrame, ablation: pd.DataFrame) -> Figure:
    """Target overlap of each feature's nearest neighbour; beside it, overlap against measured redundancy."""
    figure = Figure(figsize=(9, 3.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    nearest = pairs.loc[pairs["rank"] == 1, "jaccard"] if len(pairs) else pd.Series(dtype=float)
    left.hist(nearest, bins=30, color=ANNOTATED)
    left.set_xlabel("Jaccard of downstream targets (nearest neighbour)")
    left.set_ylabel("features")
    left.set_title("Target overlap")
    if len(ablation):
        right.scatter(ablation["mean_jaccard"], ablation["median_redundancy"], s=14, color=UNANNOTATED)
    right.set_xlabel("mean pairwise target Jaccard of the set")
    right.set_ylabel("median redundancy ratio")
    right.set_title("Overlap vs ablation" if len(ablation) else "No ablation sets for this scope")
    return figure


def calibration_figure(sweep: pd.DataFrame, deciles: pd.DataFrame) -> Figure:
    """Observed against expected null edges per source feature at each threshold (log scale), and empirical FDR
    and surviving fraction per degree decile; one colour per run."""
    figure = Figure(figsize=(11, 4.2), layout="constrained")
    thresholds, by_degree = figure.subplots(1, 2)
    for run, part in sweep.groupby("run", sort=True):
        labels = [f"|d|>{d:g}\nc>{c:g}" for d, c in zip(part["d_threshold"], part["consistency_threshold"],
                                                          strict=True)]
        positions = np.arange(len(part))
        thresholds.plot(positions, part["mean_edges"], marker="o", label=f"{run}: observed")
        thresholds.plot(positions, part["expected_null_edges_per_feature"], marker="x", linestyle="--",
                        label=f"{run}: expected null")
        thresholds.set_xticks(positions, labels, fontsize=6)
    thresholds.set_yscale("symlog", linthresh=0.1)
    thresholds.set_ylabel("edges per calibrated source feature")
    thresholds.set_title("Observed vs permutation null")
    thresholds.legend(fontsize=7)
    for run, part in deciles.groupby("run", sort=True):
        by_degree.plot(part["decile"], part["empirical_fdr"], marker="o", label=f"{run}: empirical FDR")
        by_degree.plot(part["decile"], part["surviving_ratio"], marker="s", linestyle="--",
                       label=f"{run}: surviving fraction")
    by_degree.set_xlabel("degree decile (1 = fewest edges)")
    by_degree.set_ylim(0, 1.05)
    by_degree.set_title("By degree decile")
    by_degree.legend(fontsize=7)
    return figure


DRAWERS: dict[str, Callable[[AnalysisResult], Figure]] = {
    "degrees": lambda result: degree_figure(result.tables["features"], result.tables["ccdf"], result.scope),
    "hubs": lambda result: hubs_figure(result.tables["hubs"]),
    "unannotated-hubs": lambda result: unannotated_figure(result.tables["unannotated_hubs"]),
    "powerlaw": lambda result: tail_figure(result.tables["ccdf"], result.tables["fit"], result.summary["alpha"],
                                           result.summary["xmin"]),
    "attenuation": lambda result: attenuation_figure(result.tables["layers"]),
    "bias": lambda result: bias_figure(result.tables["features"]),
    "compare": lambda result: compare_figure(result.tables["layers"]),
    "modules": lambda result: modules_figure(result.tables["members"]),
    "similarity": lambda result: similarity_figure(result.tables["pairs"], result.tables["ablation"]),
    "calibration": lambda result: calibration_figure(result.tables["sweep"], result.tables["deciles"]),
}


def draw(result: AnalysisResult) -> Figure:
    """The standard figure of an analysis result."""
    return DRAWERS[result.name](result)


def save(figure: Figure, path: Path) -> Path:
    """Save a figure as PNG or SVG (chosen by the file suffix)."""
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise AtlasError(f"{path}: --plot must end in .png or .svg")
    return write_atomically(path, lambda out: figure.savefig(out, format=path.suffix.lower()[1:], dpi=120))
