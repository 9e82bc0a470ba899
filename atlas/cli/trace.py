"""`atlas trace`: plan a circuit-tracing run, run its units (anywhere, resumably), merge and finalise it."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path

import click

from atlas.cli.output import emit_json, emit_mapping, emit_table, progress_bar
from atlas.errors import AtlasError


@click.group()
def trace() -> None:
    """Trace SAE-feature circuits: ablate source-layer features, measure every downstream feature's change.

    \b
    A run is planned once, then its units (source-feature range x cell range) run in any order, on any
    number of machines; `run` without --unit also merges and finalises (run-level BH q-values).
    \b
    Examples:
      atlas trace plan --model ./Geneformer-V2-316M --saes ./sae_models --cells k562.dataset \\
          --preset paper-l5 --out runs/l5
      atlas trace run runs/l5
      atlas trace run runs/l5 --unit-from-env SLURM_ARRAY_TASK_ID   # one unit per array task
      atlas trace merge runs/l5 && atlas trace finalize runs/l5
    """


def _batch_size(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """``auto`` (or nothing) -> None, chosen from free memory at run time; otherwise a positive integer."""
    if value is None or value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter(f"{value!r} is neither 'auto' nor a positive integer")
    return int(value)


@trace.command()
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path),
              help="Hugging Face BertForMaskedLM directory (loaded from disk only).")
@click.option("--saes", "sae_dir", required=True, type=click.Path(path_type=Path),
              help="SAE atlas root with layerNN_xE_kK/sae_final.pt directories.")
@click.option("--cells", "cells_path", required=True, type=click.Path(path_type=Path),
              help="Tokenized Geneformer dataset directory, or an .h5ad (then pass both dictionaries).")
@click.option("--token-dictionary", type=click.Path(path_type=Path), help="Geneformer token dictionary.")
@click.option("--gene-median-dictionary", type=click.Path(path_type=Path), help="Geneformer gene-median dictionary.")
@click.option("--out", "run_dir", required=True, type=click.Path(path_type=Path), help="Run directory to create.")
@click.option("--preset", default="full-depth", show_default=True,
              help="paper-l5 (L5 -> 6, 11, 17 over 20 cells) or full-depth (every later layer with an SAE).")
@click.option("--source-layer", type=int, help="Layer whose features are ablated (overrides the preset).")
@click.option("--downstream", help="Measured layers, e.g. 6,11,17 or 6-17 (overrides the preset).")
@click.option("--features", "feature_spec", default="all", show_default=True,
              help="all (active features), selective:N (reference's top-N by annotation) or a list like 3,7,10-12.")
@click.option("--min-top-genes", default=10, show_default=True,
              help="selective:N considers only features with at least this many catalogued top genes.")
@click.option("--min-frequency", default=0.001, show_default=True, help="Activation frequency defining 'active'.")
@click.option("--frequency-source", default="auto", show_default=True, type=click.Choice(["auto", "catalog", "cells"]),
              help="Where activation frequencies come from (auto: the catalog when present).")
@click.option("--n-cells", type=int, help="Use the first N cells (of the sample when --sample is given; default: the "
                                         "preset's, else all).")
@click.option("--sample", type=int, help="Draw N cells at random first (the study: 2000, seed 42), then --n-cells.")
@click.option("--seed", default=42, show_default=True, help="Seed of the --sample draw.")
@click.option("--normalization", default="geneformer", show_default=True, type=click.Choice(["geneformer", "log1p"]),
              help=".h5ad encoding: Geneformer's tokenizer, or log1p before the gene medians (the study's code).")
@click.option("--active", "active", default="topk", show_default=True, type=click.Choice(["topk", "positive"]),
              help="Where a source feature is active: among the SAE's top-k (the study's code) or positive code.")
@click.option("--max-length", default=2048, show_default=True, help="Truncate cells to this many tokens.")
@click.option("--features-per-shard", default=256, show_default=True, help="Source features per unit.")
@click.option("--cells-per-shard", type=int, help="Cells per unit (default: all cells in one range).")
@click.option("--d-threshold", default=0.5, show_default=True, help="Significant when |Cohen's d| exceeds this.")
@click.option("--consistency-threshold", default=0.7, show_default=True, help="... and consistency exceeds this.")
@click.option("--consistency", "consistency_mode", default="reference", show_default=True,
              type=click.Choice(["reference", "signed"]),
              help="reference: max(#>0, n-#>0)/n as the study's code; signed: share of cells with the mean's sign.")
@click.option("--precision", default="fp32", show_default=True, type=click.Choice(["fp32", "bf16", "fp16"]),
              help="Model precision (fp32 reproduces the reference).")
@click.option("--batch-size", default="auto", show_default=True, callback=_batch_size,
              help="Ablated variants per forward pass; auto chooses from the free memory of the device at run time "
                   "(pin a number for bit-identical reruns on other machines).")
@click.option("--run-id", help="Run id (default: derived from the inputs).")
@click.option("--device", default="cpu", show_default=True, help="Device for planning (measuring frequencies).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def plan(model_dir: Path, sae_dir: Path, cells_path: Path, token_dictionary: Path | None,
         gene_median_dictionary: Path | None, run_dir: Path, preset: str, source_layer: int | None,
         downstream: str | None, feature_spec: str, min_top_genes: int, min_frequency: float, frequency_source: str,
         n_cells: int | None, sample: int | None, seed: int, normalization: str, active: str,
         max_length: int, features_per_shard: int, cells_per_shard: int | None,
         d_threshold: float, consistency_threshold: float, consistency_mode: str, precision: str,
         batch_size: int | None, run_id: str | None, device: str, as_json: bool) -> None:
    """Select source features, validate the inputs against each other and write the run's plan.

    \b
    Example:
      atlas trace plan --model ./gf --saes ./saes --cells cells.dataset --source-layer 1 --out runs/l1
      atlas trace plan --model ./gf --saes ./saes --cells controls.h5ad --token-dictionary t.pkl \
          --gene-median-dictionary m.pkl --normalization log1p --sample 2000 --seed 42 --preset paper-l5 --out l5
    """
    from atlas.ranges import parse_ranges
    from atlas.trace.stats import Thresholds
    from atlas.trace.workflow import plan_trace

    planned = plan_trace(
        model_dir, sae_dir, cells_path, run_dir, preset=preset, source_layer=source_layer,
        downstream=parse_ranges(downstream, "layers") if downstream else None, feature_spec=feature_spec,
        min_top_genes=min_top_genes, min_frequency=min_frequency, frequency_source=frequency_source,
        token_dictionary=token_dictionary, gene_median_dictionary=gene_median_dictionary, n_cells=n_cells,
        max_length=max_length, features_per_shard=features_per_shard, cells_per_shard=cells_per_shard,
        thresholds=Thresholds(d_threshold, consistency_threshold, consistency_mode), precision=precision,
        batch_size=batch_size, active=active, sample=sample, seed=seed, normalization=normalization,
        run_id=run_id, device=device)
    data = planned.summary()
    if as_json:
        emit_json(data)
    else:
        emit_mapping(data, title="Planned trace run")
        click.echo(f"next: atlas trace run {shlex.quote(str(run_dir))}")


def _units_from_env(variable: str | None, units: tuple[int, ...]) -> list[int] | None:
    if variable is None:
        return list(units) or None
    value = os.environ.get(variable)
    if value is None or not value.strip().isdigit():
        raise AtlasError(f"environment variable {variable} is not set to a unit index")
    return [*units, int(value)]


@trace.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--unit", "units", type=int, multiple=True, help="Run only this plan unit (repeatable).")
@click.option("--unit-from-env", metavar="VARIABLE",
              help="Take the unit index from an environment variable (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--batch-size", callback=_batch_size,
              help="Ablated variants per forward: a number or auto (default: the plan's, auto unless it set one).")
@click.option("--max-memory", help="Cap for the whole process on the device when the batch size is auto, e.g. 8GiB.")
@click.option("--threads", type=int, help="CPU threads for torch (on a shared CPU, 1 avoids thread contention).")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), help="Model directory on this machine.")
@click.option("--saes", "sae_dir", type=click.Path(path_type=Path), help="SAE directory on this machine.")
@click.option("--cells", "cells_path", type=click.Path(path_type=Path),
              help="Cells on this machine (must be the planned cell set; its digest is checked).")
@click.option("--no-finalize", is_flag=True, help="Do not merge and finalise after the last unit.")
@click.option("--keep-deltas", is_flag=True,
              help="Also keep every per-cell delta (deltas/<unit>.safetensors), for `atlas trace calibrate`.")
@click.option("--deltas-dtype", default="float16", show_default=True, type=click.Choice(["float16", "float32"]),
              help="Precision of the kept deltas (float16 as the reference study).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def run(run_dir: Path, units: tuple[int, ...], unit_from_env: str | None, device: str, batch_size: int | None,
        max_memory: str | None, threads: int | None, model_dir: Path | None, sae_dir: Path | None,
        cells_path: Path | None, no_finalize: bool, keep_deltas: bool, deltas_dtype: str, quiet: bool,
        as_json: bool) -> None:
    """Run the plan's unfinished units (skipping finished ones), then merge and finalise when all are done.

    Input paths default to the planned ones; a worker on another machine passes its own --model/--saes/--cells.

    \b
    Examples:
      atlas trace run runs/l5                          # everything on this machine, resumable
      atlas trace run runs/l5 --unit 3 --device cuda   # one unit; merge later with `atlas trace merge`
      atlas trace run runs/l5 --max-memory 8GiB         # auto batch size within 8 GiB for the whole process
      atlas trace run runs/l5 --keep-deltas            # per-cell deltas too, then `atlas trace calibrate runs/l5`
    """
    import torch

    from atlas.trace.memory import parse_size
    from atlas.trace.run import finalize_run, merge_run, record_deltas, run_status, run_units

    if threads is not None:
        if threads < 1:
            raise AtlasError("--threads must be at least 1")
        torch.set_num_threads(threads)
    selected = _units_from_env(unit_from_env, units)
    bar = progress_bar(not quiet, desc="trace", unit="cell", dynamic_ncols=True)
    started, passes = time.perf_counter(), [0]

    def on_passes(count: int) -> None:
        passes[0] += count
        bar.set_postfix_str(f"{passes[0] / max(time.perf_counter() - started, 1e-9):.1f} ablated passes/s",
                            refresh=False)

    with bar:
        paths = {key: str(value) for key, value in
                 (("model", model_dir), ("saes", sae_dir), ("cells", cells_path)) if value is not None}
        report = run_units(run_dir, selected, device=device, batch_size=batch_size,
                           max_memory=parse_size(max_memory) if max_memory else None, paths=paths,
                           on_start=lambda total: setattr(bar, "total", total), on_cell=bar.update,
                           on_passes=on_passes, deltas_dtype=deltas_dtype if keep_deltas else None,
                           on_batch=lambda choice: click.echo(f"batch size {choice.size} ({choice.reason})", err=True))
    elapsed = time.perf_counter() - started
    status = run_status(run_dir)
    if selected is None and not no_finalize and not status["pending"]:
        merge_run(run_dir)
        finalize_run(run_dir)
        if keep_deltas:
            record_deltas(run_dir)
        status = run_status(run_dir)
    data = {"run_id": status["run_id"], "status": status["status"], "units_run": len(report.ran),
            "units_skipped": len(report.skipped), "units_pending": len(status["pending"]), "clean_passes": report.cells,
            "ablated_passes": report.ablated_passes, "seconds": round(elapsed, 3),
            "ablated_passes_per_s": round(report.ablated_passes / elapsed, 2) if elapsed > 0 else None,
            "edges": status["counts"].get("edges"), "batch_size": report.batch.size if report.batch else None}
    if as_json:
        emit_json(data)
    else:
        emit_mapping(data, title="Trace")


@trace.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def merge(run_dir: Path, as_json: bool) -> None:
    """Merge the cell shards of every source-feature range (exact Chan merge) into edge shards.

    \b
    Example:
      atlas trace merge runs/l5
    """
    from atlas.trace.run import merge_run

    _emit_counts(merge_run(run_dir), as_json)


@trace.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def finalize(run_dir: Path, as_json: bool) -> None:
    """Add run-level Benjamini-Hochberg q-values to every edge and mark the run finalized.

    \b
    Example:
      atlas trace finalize runs/l5
    """
    from atlas.trace.run import finalize_run

    _emit_counts(finalize_run(run_dir), as_json)


def _feature_count(_context, _parameter, value: str) -> int | None:
    if value == "all":
        return None
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter("a positive number or 'all'")
    return int(value)


@trace.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--permutations", default=500, show_default=True, help="Sign-flip permutations per source feature.")
@click.option("--features", "feature_count", default="all", show_default=True, callback=_feature_count,
              help="all, or N: the study's stratified subset (a third highest-degree, the rest across 8 degree "
                   "strata); the run's calibrated edge count is then extrapolated.")
@click.option("--seed", default=0, show_default=True, help="Seed of the sign flips and of the subset.")
@click.option("--alpha", default=0.05, show_default=True, help="BH level of the surviving-edge counts.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole summary as JSON.")
def calibrate(run_dir: Path, permutations: int, feature_count: int | None, seed: int, alpha: float,
              as_json: bool) -> None:
    """Calibrate a run traced with --keep-deltas: the reference study's sign-flip permutation null.

    Writes perm_p and perm_q (BH over the live targets) onto every edge of the calibrated features, a
    per-feature table (calibration-features.parquet) and the summary (manifest extra.calibration):
    expected null edges and empirical FDR per feature and run, the threshold sweep, surviving fraction by degree
    decile. Ingest the run afterwards (an ingested run: `atlas ingest --delete RUN_ID` first).

    \b
    Examples:
      atlas trace calibrate runs/l5                       # every traced feature, 500 permutations
      atlas trace calibrate runs/l5 --features 600 --seed 1 --json
    """
    from atlas.trace.calibrate import calibrate_run

    summary = calibrate_run(run_dir, permutations=permutations, features=feature_count, seed=seed,
                            alpha=alpha).summary
    if as_json:
        emit_json(summary)
        return
    permutation = summary["permutation"]
    emit_mapping({"features calibrated": f"{summary['n_features_calibrated']} of {summary['n_features_traced']}",
                  "permutations": permutation["n_perm"], "observed edges": permutation["observed_edges_subset"],
                  "expected null edges": permutation["expected_null_edges_subset"],
                  "empirical FDR": permutation["empirical_fdr_subset"],
                  "BH surviving tests": f"{permutation['bh_surviving_tests']} of {permutation['bh_total_tests']}",
                  "edges surviving BH": f"{permutation['effect_size_edges_surviving_bh']} of "
                                        f"{permutation['effect_size_edges_subset']}",
                  "estimated calibrated edges (run)": permutation["estimated_total_edges_fdr_all_features"]},
                 title="Calibration")
    emit_table(summary["threshold_sweep"], title="Threshold sweep (per calibrated feature)",
               columns=["d_threshold", "consistency_threshold", "mean_edges", "expected_null_edges_per_feature",
                        "implied_fdr"])


@trace.command()
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(run_dir: Path, as_json: bool) -> None:
    """Show a run's progress: units done and pending, status, counts.

    \b
    Example:
      atlas trace status runs/l5 --json
    """
    from atlas.trace.run import run_status

    data = run_status(run_dir)
    if as_json:
        emit_json(data)
    else:
        pending = data.pop("pending")
        counts = data.pop("counts")
        cells = data.pop("cells")
        emit_mapping({**data, "cells": _describe_cells(cells), "pending": pending[:20],
                      **{k: v for k, v in counts.items() if not isinstance(v, dict)}}, title="Trace run")


def _describe_cells(choice: dict) -> str:
    """``first 20 of a random 2000 (seed 42), log1p`` from the manifest's cell choice."""
    drawn = f"a random {choice['sample']} (seed {choice['seed']})" if choice.get("sample") else "the file"
    text = f"first {choice['n_cells']} of {drawn}" if choice.get("n_cells") else f"all of {drawn}"
    return text + (f", {choice['normalization']} encoding" if choice.get("normalization") else "")


def _emit_counts(manifest, as_json: bool) -> None:
    data = {"run_id": manifest.run_id, "status": manifest.status, **manifest.counts}
    if as_json:
        emit_json(data)
    else:
        emit_mapping({key: value for key, value in data.items() if not isinstance(value, dict)}, title="Trace run")
