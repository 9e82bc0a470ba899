"""`atlas release create|verify|load`: publish an atlas as a release directory, check one, load one."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from atlas.cli.output import StageBars, emit_json, emit_mapping


@click.group()
def release() -> None:
    """Share an atlas: one command publishes runs as a release, one loads a release into another atlas.

    \b
    Examples:
      atlas release create releases/L05-v1 --run L05-exhaustive --licence CC-BY-4.0 --tar
      atlas release verify releases/L05-v1
      atlas release load releases/L05-v1              # into this atlas (online, exactly once per run)
      atlas release load releases/L05-v1 --offline    # a fresh atlas (neo4j-admin import)
    """


@release.command()
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--run", "runs", multiple=True, required=True, metavar="RUN_ID", help="A run to release (repeatable).")
@click.option("--sae-atlas", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Also publish this SAE atlas's catalog features that the graph lacks.")
@click.option("--licence", help="Licence of the release's data, e.g. CC-BY-4.0 (recorded in release.json).")
@click.option("--citation", help="How to cite the release (recorded in release.json).")
@click.option("--tar", is_flag=True, help="Also write OUT.tar, the release as one file.")
@click.option("--dump", is_flag=True,
              help="Also add a neo4j-admin dump of the managed database (stops and restarts the server).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def create(out: Path, runs: tuple[str, ...], sae_atlas: Path | None, licence: str | None, citation: str | None,
           tar: bool, dump: bool, as_json: bool, quiet: bool) -> None:
    """Write a release of runs: release.json, Parquet tables, edges per run, one JSON document per feature.

    \b
    Example:
      atlas release create releases/L05-v1 --run L05-exhaustive --citation "Doe et al. 2026" --dump
    """
    from atlas.db.connection import connect
    from atlas.release import create_release

    with connect() as graph:
        summary = create_release(graph, out, list(runs), sae_atlas=sae_atlas, licence=licence, citation=citation,
                                 dump=dump, tar=tar, progress=StageBars(not (quiet or as_json), "item"))
    if as_json:
        emit_json(summary)
    else:
        emit_mapping({key: value for key, value in summary.items() if key != "counts"} | summary["counts"],
                     title="release")


@release.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify(directory: Path, as_json: bool) -> None:
    """Check a release's checksums, tables, schemas and counts: one line per problem, exit 1 when any.

    \b
    Example:
      atlas release verify releases/L05-v1
    """
    from atlas.release import verify_release

    problems = verify_release(directory)
    if as_json:
        emit_json({"directory": str(directory), "ok": not problems, "problems": problems})
    else:
        for problem in problems:
            click.echo(problem, err=True)
        if not problems:
            click.echo(f"{directory}: release is sound")
    if problems:
        sys.exit(1)


@release.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--offline", "mode", flag_value="offline",
              help="Import into a fresh managed database with neo4j-admin (stops and restarts the server).")
@click.option("--online", "mode", flag_value="online", default=True,
              help="Add to the atlas with the online loader (default): runs it holds with the same content are "
                   "skipped, with other content refused.")
@click.option("--dump", "mode", flag_value="dump", help="Restore the release's Neo4j dump (managed server).")
@click.option("--force", is_flag=True, help="With --offline or --dump: replace a database that is not empty.")
@click.option("--streams", default=2, show_default=True, help="Shards loaded concurrently (online).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def load(directory: Path, mode: str, force: bool, streams: int, as_json: bool, quiet: bool) -> None:
    """Verify a release, then build the atlas from it; a bad release is refused before anything is written.

    \b
    Examples:
      atlas release load releases/L05-v1
      atlas release load releases/L05-v1 --offline --force
      atlas release load releases/L05-v1 --dump
    """
    from atlas.release import load_release

    summary = load_release(directory, mode=mode, force=force, streams=streams,
                           progress=StageBars(not (quiet or as_json), "item"))
    if as_json:
        emit_json(summary)
    else:
        emit_mapping(summary, title="release loaded")
