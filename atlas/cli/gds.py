"""`atlas gds ALGORITHM`: any GDS algorithm of the installed library on the projection of a scope."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from atlas.cli.analyze import finish, scope_options
from atlas.errors import AtlasError


def parse_configuration(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs; a value is read as JSON when it parses (numbers, booleans, lists), else as text."""
    configuration = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator or not key:
            raise AtlasError(f"-c expects key=value, got {pair!r}")
        try:
            configuration[key] = json.loads(text)
        except json.JSONDecodeError:
            configuration[key] = text
    return configuration


@click.command("gds")
@click.argument("algorithm")
@scope_options
@click.option("-c", "--config", "configuration", multiple=True, metavar="KEY=VALUE",
              help="Algorithm configuration (repeatable), e.g. -c dampingFactor=0.9 -c maxIterations=50.")
@click.option("--mode", type=click.Choice(["stream", "stats"]), default="stream", show_default=True)
@click.option("--weighted", is_flag=True,
              help="Project the edges undirected with the relationship property 'weight' = |d| "
                   "(then e.g. -c relationshipWeightProperty=weight).")
@click.option("--write", "write_property", metavar="PROPERTY",
              help="Store the per-feature result on the features under this property name (stream mode).")
@click.option("--column", help="The result column --write stores (default: the only numeric one).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the result table to a .parquet or .csv file.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (summary and the result table).")
def gds(algorithm: str, runs: tuple[str, ...], layers: tuple[int, ...], max_q: float | None, q_column: str,
        configuration: tuple[str, ...], mode: str, weighted: bool, write_property: str | None, column: str | None,
        out: Path | None, as_json: bool) -> None:
    """Run any GDS ALGORITHM of the installed library (stream or stats mode) on the projection of --run (repeatable)
    and --layer; results are joined to feature uid, label and layer. The projection is estimated first, is the only
    thing created, and is dropped; the stored graph is untouched unless --write is given.

    \b
    Examples:
      atlas gds pageRank --run L0 --run L5 --run L11 -c dampingFactor=0.85 --out pagerank.parquet
      atlas gds wcc --run L5-exhaustive --mode stats --json
      atlas gds pageRank --run L5-exhaustive --max-q 0.05 --q-column perm_q   # calibrated edges only
      atlas gds nodeSimilarity --run L5-exhaustive -c topK=5 --layer 6
      atlas gds articleRank --run L5-exhaustive --write article_rank
      atlas gds nope --run L5-exhaustive          # lists the installed algorithms
    """
    from atlas.analysis.algorithms import node_result_column, run_algorithm
    from atlas.analysis.scope import resolve_scope
    from atlas.db.connection import connect
    from loaders.feature_properties import check_property_name, write_feature_properties

    if write_property is not None:
        check_property_name(write_property)
        if mode != "stream":
            raise AtlasError("--write stores per-feature results: use --mode stream")
    with connect() as graph:
        scope = resolve_scope(graph, runs, layers, max_q, q_column)
        result = run_algorithm(graph, scope, algorithm, parse_configuration(configuration), mode,
                               weighted_undirected=weighted)
        if write_property is not None:
            chosen = node_result_column(result.table, column)
            result.summary["written"] = write_feature_properties(graph, result.table, {write_property: chosen})
            result.summary["written_property"] = f"{write_property} (from {chosen})"
    finish(result, as_json, out, None)
