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
def query(name: str | None, params: tuple[str, ...], list_queries: bool, as_json: bool) -> None:
    """Run a named query of the Cypher library (queries/library/*.cypher), read-only.

    \b
    Examples:
      atlas query --list
      atlas query hubs -p run=L5-exhaustive -p limit=10
      atlas query feature_edges -p uid=geneformer/biosae/L05/F0898 --json
      atlas query attenuation_counts -p runs=L5-exhaustive,L5-selective
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
        result = run_read_only(graph, named.text, bound)
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
def cypher(statement: str, params: tuple[str, ...], as_json: bool) -> None:
    """Run one ad-hoc Cypher statement read-only; anything that could write is refused.

    \b
    Examples:
      atlas cypher "MATCH (r:Run) RETURN r.id AS run, r.status AS status"
      atlas cypher "MATCH (f:Feature {layer: \\$layer}) RETURN count(f) AS n" -p layer=5 --json
    """
    from atlas.db.connection import connect
    from queries.readonly import run_read_only

    parameters = {key: _json_or_text(text) for key, text in _pairs(params).items()}
    with connect() as graph:
        result = run_read_only(graph, statement, parameters)
    _emit(result, as_json)
