"""`atlas db`: the managed local Neo4j + GDS server and the graph schema."""

from __future__ import annotations

import click

from atlas.cli.output import StageBars, emit_json, emit_mapping


@click.group()
def db() -> None:
    """Manage the local Neo4j + GDS server (or check a remote one set by NEO4J_URI).

    \b
    Examples:
      atlas db start && atlas db init
      atlas db status --json
      ATLAS_BOLT_PORT=7688 ATLAS_HOME=/tmp/atlas2 atlas db start   # a second instance
    """


@db.command()
@click.option("--timeout", default=180, show_default=True, help="Seconds to wait for Bolt to answer.")
@click.option("--discard-interrupted-import", "discard", is_flag=True,
              help="After an interrupted `atlas ingest --offline`: start with database 'neo4j' empty instead.")
def start(timeout: int, discard: bool) -> None:
    """Start the managed server in the background (fetches Neo4j + GDS from Maven Central on first use).

    Refuses to serve a database that an interrupted offline import left half-written: rerun that import, or
    discard it.

    \b
    Examples:
      ATLAS_NEO4J_HEAP=2g atlas db start
      atlas db start --discard-interrupted-import
    """
    from atlas.db import server
    from atlas.db.offline_import import discard_interrupted

    if discard and discard_interrupted(server.ServerConfig.from_env().home):
        click.echo("discarded the database an interrupted offline import left incomplete", err=True)
    config = server.start(timeout=timeout, progress=lambda message: click.echo(message, err=True),
                          download_progress=StageBars(unit="B"))
    click.echo(f"Neo4j is running: {config.bolt_uri} (Neo4j Browser {config.browser_url}, "
               f"user neo4j, password in {config.password_file})")


@db.command()
def stop() -> None:
    """Stop the managed server cleanly.

    \b
    Example:
      atlas db stop
    """
    from atlas.db import server

    click.echo("Neo4j stopped" if server.stop() else "Neo4j was not running")


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(as_json: bool) -> None:
    """Say whether the managed server runs, with Neo4j and GDS versions read from the server itself.

    \b
    Example:
      atlas db status --json
    """
    from atlas.db.status import status as server_status

    data = server_status()
    if as_json:
        emit_json(data)
    else:
        emit_mapping(data, title="Neo4j")
    if not data["running"]:
        raise SystemExit(3)


@db.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def init(as_json: bool) -> None:
    """Create the constraints and indexes of the graph model (idempotent).

    \b
    Example:
      atlas db init
    """
    from atlas.db.connection import connect
    from loaders.schema import apply_schema

    with connect() as graph:
        count = apply_schema(graph)
    if as_json:
        emit_json({"statements": count})
    else:
        click.echo(f"schema ready: {count} constraints and indexes")
