"""`atlas analyze`: degrees, hubs, unannotated hubs, tail fit, bias, attenuation, run comparison, modules and
target-overlap similarity.

Every subcommand is scoped by one or more ``--run`` (projected together) and optional ``--layer`` (downstream
layers), prints a summary and a table, or ``--json``; ``--out`` writes the main table (Parquet/CSV) and ``--plot``
draws the figure (PNG/SVG).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from atlas.cli.output import emit_json, emit_mapping, emit_table


def q_options(command: Callable) -> Callable:
    """--max-q and --q-column: keep only edges whose q-value (t-test BH, or permutation BH) is small enough."""
    command = click.option("--q-column", default="q", show_default=True, type=click.Choice(["q", "perm_q"]),
                           help="Which q --max-q limits: q (BH of the t-test p) or perm_q (BH of the permutation "
                                "p, after `atlas trace calibrate`).")(command)
    return click.option("--max-q", type=float,
                        help="Only edges whose q (see --q-column) is at most this, e.g. 0.05.")(command)


def scope_options(command: Callable) -> Callable:
    """--run (repeatable, required), --layer (repeatable), --max-q and --q-column."""
    command = q_options(command)
    command = click.option("--layer", "layers", multiple=True, type=int,
                           help="Only edges into this downstream layer (repeatable).")(command)
    return click.option("--run", "runs", multiple=True, required=True,
                        help="Run id (repeatable: the runs are analysed together).")(command)


def output_options(command: Callable) -> Callable:
    """--json, --out FILE.parquet|.csv, --plot FILE.png|.svg."""
    command = click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
                           help="Draw the figure to a .png or .svg file.")(command)
    command = click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
                           help="Write the main table to a .parquet or .csv file.")(command)
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (summary and every table).")(command)


def rule_options(command: Callable) -> Callable:
    """--threshold / --percentile / --by: the hub class."""
    command = click.option("--by", default="out_degree", show_default=True,
                           type=click.Choice(["out_degree", "in_degree", "degree", "pagerank", "betweenness"]),
                           help="Measure that ranks features and defines hubs.")(command)
    command = click.option("--percentile", type=float,
                           help="Hubs are at or above this percentile of the features where the measure "
                                "is positive (for out_degree: the sources).")(command)
    return click.option("--threshold", type=float,
                        help="Hubs have more than this (default 1000 when no --percentile).")(command)


def hub_rule(threshold: float | None, percentile: float | None, by: str):
    """The HubRule of the --threshold/--percentile/--by options (threshold 1000 when neither is given)."""
    from atlas.analysis.hubs import DEFAULT_THRESHOLD, HubRule

    if threshold is None and percentile is None:
        threshold = DEFAULT_THRESHOLD
    return HubRule(threshold=threshold, percentile=percentile, by=by)


def finish(result, as_json: bool, out: Path | None, plot: Path | None, limit: int = 50) -> None:
    """Write --out and --plot, then print the result as JSON or as a summary and its main table."""
    from atlas.analysis.result import write_table
    from atlas.plain import records

    if out is not None:
        write_table(result.table, out)
    if plot is not None:
        from atlas import plots

        plots.save(plots.draw(result), plot)
    if as_json:
        emit_json(result.to_dict())
        return
    emit_mapping(result.summary, title=f"{result.name}: {result.scope}")
    click.echo()
    rows = records(result.table)
    emit_table(rows[:limit], title=f"{result.main}" + (f" (first {limit} of {len(rows)})" if len(rows) > limit else ""))
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for path, what in ((out, "table"), (plot, "figure")):
        if path is not None:
            click.echo(f"{what} written to {path}", err=True)


def scoped(analysis: Callable[..., Any]) -> Callable:
    """Wrap an analysis: connect, resolve the scope, run it, then print/write/draw the result."""

    @functools.wraps(analysis)
    def command(runs: tuple[str, ...], layers: tuple[int, ...], max_q: float | None, q_column: str, as_json: bool,
                out: Path | None, plot: Path | None, **options: Any) -> None:
        from atlas.analysis.scope import resolve_scope
        from atlas.db.connection import connect

        with connect() as graph:
            scope = resolve_scope(graph, runs, layers, max_q, q_column)
            result = analysis(graph, scope, **options)
        finish(result, as_json, out, plot)

    return command


@click.group()
def analyze() -> None:
    """Analyse the circuit graph with GDS: every analysis is scoped to --run (repeatable) and optional --layer.

    \b
    Examples:
      atlas analyze degrees --run L5-exhaustive --plot degrees.png
      atlas analyze hubs --run L5-exhaustive --threshold 1000 --write
      atlas analyze degrees --run L5-exhaustive --max-q 0.05 --q-column perm_q   # calibrated edges only
      atlas analyze hubs --run L0 --run L5 --run L11 --by pagerank     # a chained atlas
      atlas analyze unannotated-hubs --run L5-exhaustive --percentile 98 --out todo.csv
      atlas analyze compare L5-selective L5-exhaustive --json
      atlas analyze modules --run L0 --run L5 --run L11 --plot modules.png
      atlas analyze similarity --run L5-exhaustive --top-k 5
    """


@analyze.command()
@scope_options
@output_options
@scoped
def degrees(graph, scope):
    """Out/in/total degree distributions overall and per downstream layer (mean, median, percentiles, Gini).

    \b
    Example:
      atlas analyze degrees --run L5-exhaustive --layer 6 --plot degrees.svg
    """
    from atlas.analysis.degrees import degrees as run

    return run(graph, scope)


@analyze.command()
@scope_options
@output_options
@rule_options
@click.option("--top", default=20, show_default=True, help="Also list this many top-ranked features.")
@click.option("--write", is_flag=True, help="Write centralities and hub classes onto the feature nodes "
                                            "(read by `atlas query unannotated_hubs`).")
@click.option("--no-betweenness", is_flag=True, help="Skip betweenness (the slowest measure).")
@scoped
def hubs(graph, scope, threshold, percentile, by, top, write, no_betweenness):
    """Rank features by degree, PageRank and betweenness (sampled when large) and classify hubs.

    \b
    Example:
      atlas analyze hubs --run L5-exhaustive --percentile 98.2 --write --out hubs.parquet
    """
    from atlas.analysis.hubs import hubs as run

    return run(graph, scope, hub_rule(threshold, percentile, by), top=top, betweenness=not no_betweenness, write=write)


@analyze.command("unannotated-hubs")
@scope_options
@output_options
@rule_options
@click.option("--genes", default=5, show_default=True, help="Top genes listed per hub.")
@scoped
def unannotated_hubs(graph, scope, threshold, percentile, by, genes):
    """Hubs with no annotation, with their top genes so a person can start annotating them.

    \b
    Example:
      atlas analyze unannotated-hubs --run L5-exhaustive --threshold 1000 --genes 10
    """
    from atlas.analysis.hubs import unannotated_hubs as run

    return run(graph, scope, hub_rule(threshold, percentile, by), genes=genes)


@analyze.command()
@scope_options
@output_options
@click.option("--direction", type=click.Choice(["out", "in", "total"]), default="out", show_default=True)
@click.option("--xmin", type=float, help="Fix the start of the tail (default: chosen by minimal KS distance).")
@scoped
def powerlaw(graph, scope, direction, xmin):
    """Clauset-Shalizi-Newman power-law fit of the degrees, compared with lognormal, exponential, stretched
    exponential and truncated power law (normalised log-likelihood ratios; positive favours the power law).

    \b
    Example:
      atlas analyze powerlaw --run L5-exhaustive --plot tail.png
    """
    from atlas.analysis.heavy_tail import heavy_tail

    return heavy_tail(graph, scope, direction=direction, xmin=xmin)


@analyze.command()
@scope_options
@output_options
@click.option("--top", default=20, show_default=True, help="How many top hubs form the tested group.")
@click.option("--min-activation-freq", default=0.001, show_default=True,
              help="Features at the source layer firing at least this often count as traced.")
@scoped
def bias(graph, scope, top, min_activation_freq):
    """Annotation rate of the top hubs vs all traced features: Fisher's exact test, and the same adjusted for
    activation frequency (Spearman degree-frequency, frequency-adjusted hubs, partial correlation).

    \b
    Example:
      atlas analyze bias --run L5-exhaustive --top 20 --json
    """
    from atlas.analysis.bias import bias as run

    return run(graph, scope, top=top, min_activation_freq=min_activation_freq)


@analyze.command()
@scope_options
@output_options
@scoped
def attenuation(graph, scope):
    """Edges per downstream layer and their decay from the nearest to the farthest layer.

    \b
    Example:
      atlas analyze attenuation --run L5-exhaustive --plot attenuation.png
    """
    from atlas.analysis.attenuation import attenuation as run

    return run(graph, scope)


@analyze.command()
@scope_options
@output_options
@scoped
def calibration(graph, scope):
    """The permutation null of calibrated runs (`atlas trace calibrate`): observed vs expected null edges per
    threshold, empirical FDR and surviving fraction per degree decile.

    \b
    Example:
      atlas analyze calibration --run L5-exhaustive --plot calibration.png
    """
    from atlas.analysis.calibration import calibration as run

    return run(graph, scope)


@analyze.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--layer", "layers", multiple=True, type=int, help="Only edges into this downstream layer.")
@output_options
@rule_options
def compare(run_a, run_b, layers, as_json, out, plot, threshold, percentile, by):
    """Compare RUN_A (e.g. selective) with RUN_B (e.g. exhaustive): expansion factor, density per source and
    downstream layer, shared edges, and hubs present in one run and missing in the other.

    \b
    Example:
      atlas analyze compare L5-selective L5-exhaustive --percentile 98 --out hubs.csv
    """
    from atlas.analysis.compare import compare as run
    from atlas.db.connection import connect

    with connect() as graph:
        result = run(graph, run_a, run_b, list(layers) or None, hub_rule(threshold, percentile, by))
    finish(result, as_json, out, plot)


@analyze.command()
@scope_options
@output_options
@click.option("--algorithm", type=click.Choice(["leiden", "louvain"]), default="leiden", show_default=True)
@click.option("--gamma", default=1.0, show_default=True, help="Leiden resolution (higher: smaller modules).")
@click.option("--seed", default=42, show_default=True, help="Leiden random seed (one thread: reproducible).")
@click.option("--hub-threshold", default=1000.0, show_default=True,
              help="Members with more edges than this count as the module's hubs.")
@click.option("--write", is_flag=True, help="Store the module id on the features (properties module, module_scope).")
@scoped
def modules(graph, scope, algorithm, gamma, seed, hub_threshold, write):
    """Circuit modules: Leiden (or Louvain) communities of the |d|-weighted, undirected projection; per module its
    size, layers, hubs, best-connected members and enriched terms (Fisher, Benjamini-Hochberg).

    \b
    Example:
      atlas analyze modules --run L5-exhaustive --gamma 1.5 --write --plot modules.png
    """
    from atlas.analysis.modules import modules as run

    return run(graph, scope, algorithm=algorithm, gamma=gamma, seed=seed, hub_threshold=hub_threshold, write=write)


@analyze.command()
@scope_options
@output_options
@click.option("--top-k", default=10, show_default=True, help="Most similar features listed per feature.")
@scoped
def similarity(graph, scope, top_k):
    """Redundancy by target overlap: node similarity (Jaccard over downstream targets, top-k per feature); where
    `atlas ablate` measured feature sets of the same model and SAEs, their mean overlap beside the measured
    redundancy ratio (Spearman).

    \b
    Example:
      atlas analyze similarity --run L5-exhaustive --top-k 5 --out similar.parquet
    """
    from atlas.analysis.similarity import similarity as run

    return run(graph, scope, top_k=top_k)
