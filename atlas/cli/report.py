"""`atlas report`: one self-contained HTML report (and Markdown) of a run or a set of runs."""

from __future__ import annotations

from pathlib import Path

import click

from atlas.cli.analyze import hub_rule, q_options, rule_options
from atlas.cli.output import emit_json, progress_bar


@click.command()
@click.option("--run", "runs", multiple=True, required=True, help="Run id (repeatable: analysed together).")
@click.option("--layer", "layers", multiple=True, type=int, help="Only edges into this downstream layer.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for report.html, report.md and figures/.")
@q_options
@rule_options
@click.option("--top", default=20, show_default=True, help="Top hubs listed and tested for annotation bias.")
@click.option("--explorer-url", metavar="URL",
              help="Where `atlas serve` runs (e.g. http://127.0.0.1:8000): every feature uid links to its page.")
@click.option("--json", "as_json", is_flag=True, help="Print the written paths as JSON.")
def report(runs, layers, out_dir, max_q, q_column, threshold, percentile, by, top, explorer_url, as_json):
    """Write the report of a scope: summary, degree plots, hubs, unannotated hubs, attenuation, tail fit and
    annotation bias, each with the command that reproduces it.

    \b
    Examples:
      atlas report --run L5-exhaustive --out reports/L5
      atlas report --run L5-exhaustive --percentile 98.2 --top 20 --out reports/L5
      atlas report --run L5-exhaustive --out reports/L5 --explorer-url http://127.0.0.1:8000
    """
    from atlas.analysis.scope import resolve_scope
    from atlas.db.connection import connect
    from atlas.errors import AtlasError
    from atlas.report import build_report, write_report

    if explorer_url is not None and not explorer_url.startswith(("http://", "https://")):
        raise AtlasError(f"--explorer-url must start with http:// or https://, got {explorer_url!r}")
    with connect() as graph:
        scope = resolve_scope(graph, runs, layers, max_q, q_column)
        with progress_bar(not as_json, desc="report", unit="section") as bar:
            built = build_report(graph, scope, hub_rule(threshold, percentile, by), top,
                                 progress=lambda done, total: bar.update(done - bar.n))
    paths = write_report(built, out_dir, explorer_url)
    if as_json:
        emit_json({key: str(path) for key, path in paths.items()} | {"sections": [s.key for s in built.sections]})
    else:
        click.echo(f"report written: {paths['html']} (Markdown: {paths['markdown']})")
