"""`atlas ablate` and `atlas steer`: combinatorial ablation and trajectory steering, stored in the graph."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from atlas.cli.output import StageBars, emit_json, emit_mapping, emit_table
from atlas.errors import AtlasError
from atlas.plain import records

_PATH = click.Path(path_type=Path)
_ANY_DEPTH = 10_000  # --layers is checked against the SAEs that exist, not against a model depth here


def _shared_options(command: Callable) -> Callable:
    """Inputs, outputs and storage options that `ablate` and `steer` share."""
    options = [
        click.option("--model", "model_dir", type=_PATH, help="Hugging Face BertForMaskedLM directory."),
        click.option("--saes", "saes_dir", type=_PATH, help="SAE atlas root (layerNN_xE_kK directories)."),
        click.option("--cells", "cells_path", type=_PATH,
                     help="Tokenized Geneformer dataset directory, or an .h5ad (then pass both dictionaries)."),
        click.option("--token-dictionary", type=_PATH, help="Geneformer token dictionary (.pkl/.json)."),
        click.option("--gene-median-dictionary", type=_PATH, help="Geneformer gene-median dictionary (.h5ad cells)."),
        click.option("--n-cells", type=int, help="Use the first N cells (of the --sample when given; default: all)."),
        click.option("--sample", type=int, help="Draw N cells at random first (seeded by --cell-seed)."),
        click.option("--cell-seed", default=42, show_default=True, help="Seed of the --sample draw."),
        click.option("--normalization", default="geneformer", show_default=True,
                     type=click.Choice(["geneformer", "log1p"]),
                     help=".h5ad encoding: Geneformer's tokenizer, or log1p before the gene medians (the study's)."),
        click.option("--active", default="topk", show_default=True, type=click.Choice(["topk", "positive"]),
                     help="Where a feature is active: among its SAE's top-k (the study's code) or positive code."),
        click.option("--max-length", default=2048, show_default=True, help="Truncate cells to this many tokens."),
        click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps."),
        click.option("--out", "out_dir", type=_PATH, help="Results directory (default: ./experiments/<run id>)."),
        click.option("--run-id", help="Run id (default: kind + digest of model, SAEs, cells and settings)."),
        click.option("--store/--no-store", default=True, show_default=True,
                     help="Write the results into Neo4j (managed server or NEO4J_URI)."),
        click.option("--load", "load_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
                     help="Store an existing results directory in the graph instead of running (no torch)."),
        click.option("--plot", type=_PATH, help="Save the figure to this .png or .svg."),
        click.option("--json", "as_json", is_flag=True, help="Print JSON."),
        click.option("--quiet", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _require(**values: Any) -> None:
    missing = [f"--{name.replace('_', '-')}" for name, value in values.items() if value is None]
    if missing:
        raise AtlasError(f"missing {', '.join(missing)} (or give --load DIR to store existing results)")


def _cells(options: dict[str, Any]):
    from atlas.experiments.workflow import CellSource

    _require(model=options["model_dir"], saes=options["saes_dir"], cells=options["cells_path"])
    return CellSource(options["cells_path"], options["token_dictionary"], options["gene_median_dictionary"],
                      options["n_cells"], options["max_length"], options["sample"], options["cell_seed"],
                      options["normalization"])


def _store(run: dict[str, Any], tables: dict, out_dir: Path) -> dict[str, int]:
    from atlas.db.connection import connect
    from loaders.experiments import store_results

    try:
        with connect() as graph:
            return store_results(graph, run, tables)
    except AtlasError as error:
        kind = "ablate" if run["kind"] == "ablation" else "steer"
        raise AtlasError(f"{error}; the results are saved in {out_dir}: store them later with "
                         f"`atlas {kind} --load {out_dir}`") from error


def _finish(run: dict[str, Any], tables: dict, out_dir: Path, store: bool, plot: Path | None,
            figure: Callable, quiet: bool) -> dict[str, Any]:
    """Store, plot and say where everything went; returns the JSON header of the command's output."""
    stored = _store(run, tables, out_dir) if store else None
    if plot is not None:
        from atlas.plots import save

        save(figure(), plot)
    if not quiet:
        click.echo(f"{run['kind']} run {run['id']}: results in {out_dir}"
                   + (f", stored in the graph ({stored})" if stored else "")
                   + (f", figure {plot}" if plot else ""), err=True)
    return {"run": run, "out": str(out_dir), "stored": stored, "plot": str(plot) if plot else None}


def _loaded(load_dir: Path, kind: str):
    from atlas.experiments.results import load_tables

    run, tables = load_tables(load_dir)
    if run["kind"] != kind:
        raise AtlasError(f"{load_dir} holds {run['kind']} results, not {kind}")
    return run, tables


@click.command()
@_shared_options
@click.option("--set", "explicit", multiple=True, metavar="L:F,L:F,...",
              help="An explicit feature set, e.g. 5:898,5:1203,8:77 (repeatable).")
@click.option("--select", "selections", multiple=True,
              type=click.Choice(["same-pathway", "cross-pathway", "random"]),
              help="Choose sets automatically from the SAE catalogs (repeatable; random = control).")
@click.option("--layers", help="Layers to choose features from for --select, e.g. 5 or 5,8.")
@click.option("--order", default=3, show_default=True, help="Features per automatically chosen set.")
@click.option("--n-sets", default=10, show_default=True, help="Sets per --select kind.")
@click.option("--min-frequency", default=0.001, show_default=True, help="Only features at least this active.")
@click.option("--seed", default=0, show_default=True, help="Seed of the automatic selection.")
@click.option("--target-layer", type=int, help="Layer whose features are measured (default: the last).")
@click.option("--batch-size", default=64, show_default=True, help="Ablation conditions per forward pass.")
@click.option("--min-effect", default=0.5, show_default=True,
              help="Targets: |d| above this in any condition ...")
@click.option("--min-consistency", default=0.7, show_default=True,
              help="... with consistency above this in the same condition (study definition).")
@click.option("--tolerance", type=float,
              help="Additive when the redundancy is 1 +- this (default: 0.2 study, 0.1 whole-set).")
@click.option("--definition", default="study", show_default=True, type=click.Choice(["study", "whole-set"]),
              help="study: the reference code's positions, targets, ratio, interaction and classes; whole-set: "
                   "every condition over the whole set's active positions, signed interaction.")
def ablate(model_dir, saes_dir, cells_path, token_dictionary, gene_median_dictionary, n_cells, sample, cell_seed,
           normalization, active, max_length, device, out_dir, run_id, store, load_dir, plot, as_json, quiet,
           explicit, selections, layers, order, n_sets, min_frequency, seed, target_layer, batch_size, min_effect,
           min_consistency, tolerance, definition) -> None:
    """Ablate every subset of feature sets together and measure redundancy and interactions at a target layer.

    For a triplet A,B,C the conditions A, B, C, AB, AC, BC, ABC each run in one forward (every feature at its own
    layer); per target feature: the redundancy |d_ABC| / (|d_A|+|d_B|+|d_C|), the inclusion-exclusion interaction
    term, the marginal contribution of the last feature and the class (super-, sub-additive, or additive within
    --tolerance). --definition study (default) follows the reference study's code: each condition averaged over
    its own members' active positions, targets with |d| > 0.5 and consistency > 0.7 in any condition, ratio 1.0
    where the summed singles are <= 0.01, interaction and marginal over |d|, medians as headline numbers.
    Results go to a directory and, by default, to the graph as (:Interaction) nodes.

    \b
    Examples:
      atlas ablate --model ./gf --saes ./saes --cells cells.dataset --set 5:898,5:1203,5:77 --n-cells 50
      atlas ablate --model ./gf --saes ./saes --cells cells.dataset --layers 5 \\
          --select same-pathway --select cross-pathway --select random --order 3 --n-sets 20 --plot redundancy.png
      atlas ablate --load experiments/ablation-1a2b3c4d5e6f      # store saved results in the graph
    """
    from atlas.experiment_plots import redundancy_figure
    from atlas.experiments.summaries import order_overview

    options = locals()
    if load_dir is not None:
        run, tables = _loaded(load_dir, "ablation")
        out_dir, store = load_dir, True
    else:
        from atlas.experiments.results import pending_results_dir, settle_results_dir
        from atlas.experiments.workflow import choose_sets, run_ablation
        from atlas.sae.workflow import parse_layers

        cells = _cells(options)
        chosen_layers = parse_layers(layers, _ANY_DEPTH) if layers else []
        sets = choose_sets(saes_dir, explicit, selections, chosen_layers, order, n_sets, seed, min_frequency)
        run_dir = out_dir or pending_results_dir()
        run, tables = run_ablation(model_dir, saes_dir, cells, run_dir, sets, target_layer=target_layer,
                                   batch_size=batch_size, min_effect=min_effect, min_consistency=min_consistency,
                                   tolerance=tolerance, definition=definition, active=active, device=device,
                                   run_id=run_id, progress=StageBars(not quiet and not as_json, "cell"))
        out_dir = out_dir or settle_results_dir(run_dir, run["id"])
    header = _finish(run, tables, out_dir, store, plot, lambda: redundancy_figure(tables["orders"]),
                     quiet or as_json)
    set_columns = ["set_id", "selection", "order", "members", "term", "n_cells", "n_targets", "median_redundancy",
                   "median_interaction", "median_marginal", "n_subadditive", "n_additive", "n_superadditive",
                   "definition"]
    sets_rows = records(tables["sets"].reindex(columns=set_columns))
    orders_rows = records(order_overview(tables["orders"]))
    if as_json:
        emit_json(header | {"sets": sets_rows, "orders": orders_rows})
        return
    definition = run["thresholds"].get("definition", "whole-set")
    emit_table(sets_rows, title=f"Feature sets ({run['id']}, target layer {run['thresholds']['target_layer']}, "
                                f"{definition} definition)")
    click.echo()
    emit_table(orders_rows, title="By order (single -> pair -> triplet ...)")


@click.command()
@_shared_options
@click.option("--layers", help="Layers to search for switch features, e.g. 5,11,17 (or give --feature).")
@click.option("--feature", "features", multiple=True, metavar="L:F", help="Steer this feature (repeatable).")
@click.option("--alpha", "alphas", multiple=True, type=float,
              help="Steering strength (repeatable; default 2 and 5, the study's).")
@click.option("--pseudotime", "pseudotime_path", type=_PATH,
              help="Per-cell pseudotime from a .csv/.tsv/.parquet/.h5ad/.npy (default: diffusion pseudotime).")
@click.option("--pseudotime-column", default="pseudotime", show_default=True, help="Column of --pseudotime.")
@click.option("--pseudotime-of", "pseudotime_of", default="auto", show_default=True,
              type=click.Choice(["auto", "expression", "embedding"]),
              help="Diffusion pseudotime of the expression (the study's: HVG, PCA, diffusion map; .h5ad cells) or of "
                   "the model's mean embedding; auto: expression for .h5ad cells.")
@click.option("--root", "root_rule", default="auto", show_default=True,
              help="Root of diffusion pseudotime: auto (type:hematopoietic stem cell when cells carry that type, "
                   "else dc1-min), type:<label> (first cell of it), cell:<index>, dc1-min, dc1-max, group:<label>.")
@click.option("--labels", "labels_path", type=_PATH,
              help="Per-cell labels for the root rule (default: --label-column of the .h5ad cells' obs).")
@click.option("--label-column", default="cell_type", show_default=True, help="Column of the labels.")
@click.option("--neighbors", default=15, show_default=True, help="Neighbours of the diffusion graph.")
@click.option("--groups", default="tertiles", show_default=True, type=click.Choice(["tertiles", "extremes"]),
              help="Early and late cells: pseudotime tertiles (the study's) or --extreme-fraction at each end.")
@click.option("--extreme-fraction", default=0.2, show_default=True,
              help="With --groups extremes: share of cells at each pseudotime end.")
@click.option("--steer-cells", default="early", show_default=True, type=click.Choice(["early", "all"]),
              help="Which cells are steered: the early group (the study's) or every cell.")
@click.option("--spread", default="population", show_default=True, type=click.Choice(["population", "sample"]),
              help="std_ds estimator: population (ddof 0, the study's numpy std) or sample (ddof 1).")
@click.option("--switch-threshold", default=0.8, show_default=True,
              help="|Cohen's d| (late vs early activation) that makes a switch feature.")
@click.option("--max-features", default=10, show_default=True, help="Switch features steered per layer.")
@click.option("--top-genes", default=20, show_default=True,
              help="Genes reported by absolute logit change, and up- and down-regulated.")
@click.option("--gene-names", "gene_name_dictionary", type=_PATH,
              help="Geneformer gene name -> Ensembl id dictionary, to report gene symbols.")
@click.option("--centered", is_flag=True,
              help="Measure cosines around the cells' mean logit vector (default: around zero, as the reference).")
@click.option("--batch-size", default=32, show_default=True, help="Steered variants per forward pass.")
def steer(model_dir, saes_dir, cells_path, token_dictionary, gene_median_dictionary, n_cells, sample, cell_seed,
          normalization, active, max_length, device, out_dir, run_id, store, load_dir, plot, as_json, quiet, layers,
          features, alphas, pseudotime_path, pseudotime_column, pseudotime_of, root_rule, labels_path, label_column,
          neighbors, groups, extreme_fraction, steer_cells, spread, switch_threshold, max_features, top_genes,
          gene_name_dictionary, centered, batch_size) -> None:
    """Steer switch features and measure how far cells move from early toward late pseudotime.

    h' = h + (alpha - 1) * a_f * W_dec[f] where f is active; ds = cos(z',late) - cos(z',early) - [cos(z,late) -
    cos(z,early)] on the output logits, against the mean logits of the early and late pseudotime groups. Defaults
    follow the reference study: expression pseudotime rooted at the first haematopoietic stem cell, tertiles, the
    early cells steered at alphas 2 and 5, population std. Reports per feature and alpha the fraction of cells with
    ds > 0, mean and std of ds, the top genes by absolute change and the up/down genes, and per layer the
    directionality. Results go to a directory and, by default, to the graph as (:Steering) nodes.

    \b
    Examples:
      atlas steer --model ./gf --saes ./saes --cells immune.h5ad --token-dictionary tok.pkl \
          --gene-median-dictionary med.pkl --normalization log1p --sample 500 --layers 0,5,11,17
      atlas steer --model ./gf --saes ./saes --cells cells.dataset --layers 5,11,17 --root dc1-min --plot steer.png
      atlas steer --model ./gf --saes ./saes --cells pbmc.h5ad --token-dictionary tok.pkl \\
          --gene-median-dictionary med.pkl --pseudotime pbmc.h5ad --pseudotime-column dpt --feature 5:898
      atlas steer --load experiments/steering-1a2b3c4d5e6f       # store saved results in the graph
    """
    from atlas.experiment_plots import fraction_positive_figure

    options = locals()
    if load_dir is not None:
        run, tables = _loaded(load_dir, "steering")
        out_dir, store = load_dir, True
    else:
        from atlas.experiments.results import pending_results_dir, settle_results_dir
        from atlas.experiments.workflow import PseudotimeSource, run_steering
        from atlas.sae.workflow import parse_layers

        cells = _cells(options)
        pseudotime = PseudotimeSource(pseudotime_path, pseudotime_column, root_rule, labels_path, label_column,
                                      neighbors, pseudotime_of)
        run_dir = out_dir or pending_results_dir()
        run, tables = run_steering(model_dir, saes_dir, cells, run_dir,
                                   layers=parse_layers(layers, _ANY_DEPTH) if layers else None, features=features,
                                   alphas=alphas or (2.0, 5.0), pseudotime=pseudotime, groups=groups,
                                   extreme_fraction=extreme_fraction, steer_cells=steer_cells, spread=spread,
                                   active=active, switch_threshold=switch_threshold,
                                   max_features=max_features, top_genes=top_genes,
                                   gene_name_dictionary=gene_name_dictionary, centered=centered,
                                   batch_size=batch_size, device=device,
                                   run_id=run_id, progress=StageBars(not quiet and not as_json, "cell"))
        out_dir = out_dir or settle_results_dir(run_dir, run["id"])
    header = _finish(run, tables, out_dir, store, plot, lambda: fraction_positive_figure(tables["layers"]),
                     quiet or as_json)
    columns = ["layer", "feature", "alpha", "switch_d", "n_cells", "fraction_positive", "mean_ds", "std_ds",
               "top_genes", "top_up", "top_down"]
    results = records(tables["results"].reindex(columns=columns))
    for row in results:
        for key in ("top_genes", "top_up", "top_down"):
            row[key] = (row[key] or [])[:5] if isinstance(row[key], list) else []
    layer_rows = records(tables["layers"])
    if as_json:
        emit_json(header | {"results": results, "layers": layer_rows})
        return
    emit_table(results, title=f"Steering ({run['id']}): ds > 0 = toward late pseudotime")
    click.echo()
    emit_table(layer_rows, title="Directionality by layer")
    if not results:
        emit_mapping({"switch features": 0, "hint": "lower --switch-threshold or give --feature"})
