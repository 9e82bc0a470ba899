"""Calibration of a scope's runs (`atlas trace calibrate`, read from their Run nodes): observed against expected
null edges per threshold, and FDR and surviving fraction per degree decile. No computation happens here: the
numbers were measured by the calibration and travel with the run."""

from __future__ import annotations

import json

import pandas as pd

import queries
from atlas.analysis.result import AnalysisResult
from atlas.analysis.scope import Scope
from atlas.db.connection import Graph
from atlas.errors import AtlasError

HEADLINE = ("n_features", "n_perm", "observed_edges_subset", "expected_null_edges_subset", "empirical_fdr_subset",
            "bh_surviving_fraction", "effect_size_edges_surviving_frac", "estimated_total_edges_fdr_all_features")


def calibration(graph: Graph, scope: Scope) -> AnalysisResult:
    """The calibration of every calibrated run of the scope (an error when none is)."""
    rows = graph.read(queries.internal("run_calibration").text, runs=list(scope.runs))
    summaries = {row["run"]: json.loads(row["calibration"]) for row in rows if row["calibration"]}
    if not summaries:
        raise AtlasError(f"no run of {scope.key} is calibrated: `atlas trace calibrate RUN_DIR`, then load it again")
    runs = pd.DataFrame([{"run": run, "n_features_traced": summary["n_features_traced"],
                          **{key: summary["permutation"][key] for key in HEADLINE}}
                         for run, summary in summaries.items()])
    sweep = pd.DataFrame([{"run": run, **row} for run, summary in summaries.items()
                          for row in summary["threshold_sweep"]])
    deciles = pd.DataFrame([{"run": run, "decile": position + 1, **row} for run, summary in summaries.items()
                            for position, row in enumerate(summary["permutation"]["surviving_by_degree_decile"])])
    summary = {"calibrated_runs": len(summaries), "uncalibrated_runs": len(scope.runs) - len(summaries)}
    if len(summaries) == 1:
        summary |= runs.iloc[0].drop("run").to_dict()
    return AnalysisResult("calibration", scope.key, summary, {"runs": runs, "sweep": sweep, "deciles": deciles},
                          main="sweep", command=f"atlas analyze calibration {scope.command_flags()}")
