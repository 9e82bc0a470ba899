"""Run Cypher read-only: the path behind `atlas query` and `atlas cypher`.

Two independent guards refuse a write. Before anything runs, the server plans the statement (``EXPLAIN``) and must
classify it as read-only (query type ``r``); clauses and procedures that read-only planning lets through but that
change state or reach outside the database (``LOAD CSV``, GDS catalog changes, non-READ procedures) are refused by
name. Then the statement runs in a managed *read* transaction, where the server itself rejects any write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import neo4j
from neo4j.exceptions import ClientError, CypherSyntaxError
from neo4j.graph import Node, Path, Relationship

from atlas.db.connection import Graph, translate_errors
from atlas.errors import AtlasError
from atlas.plain import plain as strict_plain

# Procedure suffixes that only read: GDS streams, statistics, estimates and catalog listings.
_READ_ONLY_GDS = ("stream", "stats", "estimate", "list", "exists", "version")
_FORBIDDEN_CLAUSES = re.compile(
    r"(?<![.:$\w])(LOAD\s+CSV|CREATE|MERGE|SET|DELETE|REMOVE|DROP|FOREACH|TERMINATE|GRANT|DENY|REVOKE|ALTER|RENAME)\b",
    re.IGNORECASE,
)
_PROCEDURE = re.compile(r"\b([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)+)\s*\(")
_ALIAS = re.compile(r"\bAS\s+[A-Za-z_]\w*", re.IGNORECASE)
_STRINGS_AND_COMMENTS = re.compile(r"'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"|`[^`]*`|//[^\n]*|/\*.*?\*/", re.DOTALL)


@dataclass(frozen=True)
class QueryResult:
    """Columns and rows (plain Python values) of a read-only statement."""

    columns: list[str]
    rows: list[dict[str, Any]]


def _code_only(statement: str) -> str:
    """The statement with literals, quoted names, aliases and comments blanked out: keywords there do not count."""
    return _ALIAS.sub(" AS _", _STRINGS_AND_COMMENTS.sub(" ", statement))


def _refusal(reason: str) -> AtlasError:
    return AtlasError(f"refused: {reason}; `atlas cypher` and `atlas query` are read-only "
                      "(writes go through `atlas ingest`, `atlas annotate` and `atlas analyze ... --write`)")


def _procedure_modes(graph: Graph, names: set[str]) -> dict[str, str]:
    rows = graph.read("SHOW PROCEDURES YIELD name, mode WHERE name IN $names RETURN name, mode", names=sorted(names))
    return {row["name"]: row["mode"] for row in rows}


# Statements found read-only, per server and database: whether a statement writes does not depend on its parameters,
# so a process that runs the same library query many times plans it once.
_READ_ONLY_STATEMENTS: set[tuple[str, str, str]] = set()


def check_read_only(graph: Graph, statement: str, parameters: Mapping[str, Any] | None = None) -> None:
    """Raise an AtlasError naming the reason when ``statement`` could change the database or its GDS catalog."""
    key = (graph.settings.uri, graph.database, statement)
    if key in _READ_ONLY_STATEMENTS:
        return
    code = _code_only(statement)
    clause = _FORBIDDEN_CLAUSES.search(code)
    if clause:
        raise _refusal(f"the statement contains {' '.join(clause.group(1).split()).upper()}")
    called = {name for name in _PROCEDURE.findall(code) if "." in name}
    for name in sorted(called):
        if name.lower().startswith("gds.") and name.split(".")[-1].lower() not in _READ_ONLY_GDS \
                and not name.lower().startswith(("gds.util.", "gds.similarity.")):
            raise _refusal(f"{name} changes the GDS catalog or writes results")
    modes = _procedure_modes(graph, called) if called else {}
    for name, mode in sorted(modes.items()):
        if mode != "READ":
            raise _refusal(f"procedure {name} runs in {mode} mode")
    query_type = planned_query_type(graph, statement, parameters)
    if query_type != "r":
        kinds = {"w": "writes", "rw": "reads and writes", "s": "changes the schema"}
        raise _refusal(f"the server plans this statement as one that {kinds.get(query_type, query_type)}")
    _READ_ONLY_STATEMENTS.add(key)


def planned_query_type(graph: Graph, statement: str, parameters: Mapping[str, Any] | None = None) -> str:
    """How the server classifies a statement without running it: ``r``, ``rw``, ``w`` or ``s`` (schema)."""
    if not re.match(r"(?i)\s*EXPLAIN\b", _code_only(statement)):
        statement = "EXPLAIN " + re.sub(r"(?i)^\s*PROFILE\b", "", statement)
    with translate_errors(graph.settings), graph.driver.session(
            database=graph.database, default_access_mode=neo4j.READ_ACCESS) as session:
        try:
            return session.run(statement, dict(parameters or {})).consume().query_type
        except CypherSyntaxError as error:
            raise AtlasError(f"Cypher syntax error: {_first_line(error.message)}") from error


def run_read_only(graph: Graph, statement: str, parameters: Mapping[str, Any] | None = None) -> QueryResult:
    """Check that ``statement`` is read-only, then run it in a managed read transaction and return plain rows."""
    check_read_only(graph, statement, parameters)

    def work(tx: neo4j.ManagedTransaction) -> QueryResult:
        result = tx.run(statement, dict(parameters or {}))
        columns = list(result.keys())
        return QueryResult(columns, [{key: plain(record[key]) for key in columns} for record in result])

    try:
        return graph.read_transaction(work)
    except ClientError as error:
        if error.code and "AccessMode" in error.code:
            raise _refusal("the server rejected a write in a read transaction") from error
        raise AtlasError(f"Cypher error: {_first_line(error.message)}") from error


def _first_line(message: str | None) -> str:
    return (message or "unknown error").strip().splitlines()[0]


def plain(value: Any) -> Any:
    """Nodes, relationships and paths as dicts and lists; temporal and spatial values as strings; numbers strict
    (:func:`atlas.plain.plain`: NaN and Infinity as None)."""
    if isinstance(value, Node):
        return {"labels": sorted(value.labels), **dict(value)}
    if isinstance(value, Relationship):
        return {"type": value.type, **dict(value)}
    if isinstance(value, Path):
        return [plain(node) for node in value.nodes]
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return strict_plain(value)
    return str(value)
