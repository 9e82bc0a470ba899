"""`atlas demo`: from the PBMCs bundled with scanpy to a circuit atlas in Neo4j and an HTML report."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path

import click

from atlas.cli.output import emit_json
from atlas.explorer import DEFAULT_PORT


@click.command()
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="Where the demo keeps its files (default: $ATLAS_HOME/demo).")
@click.option("--tiny", is_flag=True, help="A seconds-long version (3 small layers, 60 cells) to check the set-up.")
@click.option("--no-start", is_flag=True, help="Do not start the managed server (use NEO4J_URI or a running one).")
@click.option("--serve", "serve", is_flag=True, help="Keep the explorer (`atlas serve`) running after the demo.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="The explorer's TCP port (with --serve, and in the printed command).")
@click.option("--json", "as_json", is_flag=True, help="Print where everything is as JSON at the end.")
def demo(home: Path | None, tiny: bool, no_start: bool, serve: bool, port: int, as_json: bool) -> None:
    """Run the whole pipeline on real cells: model -> SAEs -> catalog -> annotation -> trace -> Neo4j -> report.

    The model and SAEs are cached under the demo directory: a second run only re-runs the cheap steps.

    \b
    Examples:
      atlas demo
      atlas demo --serve             # then browse http://127.0.0.1:8000/
      atlas demo --serve --port 8080
      ATLAS_HOME=/tmp/atlas2 ATLAS_BOLT_PORT=7688 ATLAS_HTTP_PORT=7475 atlas demo --tiny
    """
    from atlas.demo.pipeline import DemoSizes, run_demo
    from atlas.demo.summary import next_steps

    started = time.perf_counter()
    sizes = DemoSizes.tiny() if tiny else DemoSizes()
    # with --json, stdout carries only the final JSON: the steps' own output goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        result = run_demo(home, sizes, start_server=not no_start, echo=click.echo)
    total = round(time.perf_counter() - started, 1)
    summary = next_steps(result, port)
    if as_json:
        emit_json({**summary, "seconds": {**result.seconds, "total": total}})
    else:
        _print_summary(summary, total)
    if serve:
        from atlas.cli.serve import run_explorer

        run_explorer(port=port, reports=result.report.parent.parent)


def _print_summary(summary: dict, total: float) -> None:
    click.secho(f"\nDone in {total} s.", bold=True)
    click.echo(f"Report:        {summary['report']}")
    click.echo(f"Neo4j Browser: {summary['browser']}  (connect to {summary['bolt']}, user neo4j, password in "
               f"{summary['password_file']})")
    click.echo(f"Run id:        {summary['run_id']}   model {summary['model']}, SAEs {summary['saes']}")
    click.echo("Try next:")
    for command in summary["try"]:
        click.echo(f"  {command}")
    click.echo(f"Explorer:      {summary['explorer']['command']}   then open {summary['explorer']['url']}")
