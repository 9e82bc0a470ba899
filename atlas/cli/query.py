"""`atlas query` (the named Cypher library) and `atlas cypher` (ad-hoc Cypher), both strictly read-only."""

from __future__ import annotations

import json

import click

from atlas.cli.output import emit_json, emit_table
from atlas.errors import AtlasError


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise AtlasError(f"parameter {value!r} is not KEY=VALUE")
        pairs[key.strip()] = text
    return pairs


def _timeout_option(function):
    return click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True,
                        metavar="SECONDS", help="Stop the statement after this long (a transaction timeout).")(function)


def _emit(result, as_json: bool, title: str | None = None) -> None:
    if as_json:
        emit_json(result.rows)
    else:
        emit_table(result.rows, title=title, columns=result.columns)


@click.command()
@click.argument("name", required=False)
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE", help="A query parameter (repeatable).")
@click.option("--list", "list_queries", is_flag=True, help="List the named queries with their parameters.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_timeout_option
def query(name: str | None, params: tuple[str, ...], list_queries: bool, as_json: bool, timeout: float) -> None:
    """Run a named query of the Cypher library (queries/library/*.cypher), read-only.

    \b
    Examples:
      atlas query --list
      atlas query hubs -p run=L5-exhaustive -p limit=10
      atlas query feature_edges -p uid=geneformer/biosae/L05/F0898 --json
      atlas query attenuation_counts -p runs=L5-exhaustive,L5-selective
      atlas query paths_between -p source=gf/sae/L05/F0898 -p target=gf/sae/L17/F0012 --timeout 300
    """
    import queries

    if list_queries or not name:
        listing = [{"name": q.name, "purpose": q.purpose,
                    "parameters": ", ".join(f"{p.name}: {p.type}" + ("" if p.required else f" = {p.default}")
                                            for p in q.parameters.values()),
                    "returns": q.returns} for q in queries.library().values()]
        if as_json:
            emit_json(listing)
        else:
            emit_table(listing, title="Named queries (atlas query NAME -p key=value)",
                       columns=["name", "parameters", "purpose"])
        return
    from atlas.db.connection import connect
    from queries.readonly import run_read_only

    named = queries.get(name)
    bound = named.bind(_pairs(params))
    with connect() as graph:
        result = run_read_only(graph, named.text, bound, timeout)
    _emit(result, as_json)


def _json_or_text(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@click.command()
@click.argument("statement")
@click.option("-p", "--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A parameter; the value is read as JSON when it parses (42, [1,2], \"x\"), else as text.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_timeout_option
def cypher(statement: str, params: tuple[str, ...], as_json: bool, timeout: float) -> None:
    """Run one ad-hoc Cypher statement read-only; anything that could write is refused.

    The server plans the statement first: only read operators, built-in functions and a short list of read-only
    procedures pass (no LOAD CSV, admin commands, other databases or GDS catalog changes: use `atlas gds`).

    \b
    Examples:
      atlas cypher "MATCH (r:Run) RETURN r.id AS run, r.status AS status"
      atlas cypher "MATCH (f:Feature {layer: \\$layer}) RETURN count(f) AS n" -p layer=5 --json
    """
    from atlas.db.connection import connect
    from queries.readonly import run_read_only

    parameters = {key: _json_or_text(text) for key, text in _pairs(params).items()}
    with connect() as graph:
        result = run_read_only(graph, statement, parameters, timeout)
    _emit(result, as_json)
