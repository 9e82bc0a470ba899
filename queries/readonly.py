"""Run Cypher read-only: the path behind `atlas query` and `atlas cypher`.

Read-only is decided by what the server will run, not by how the statement is written. The server plans the
statement (``EXPLAIN``); every operator of that plan must be a read operator of :data:`READ_OPERATORS`, on the
connected database; every procedure it calls and every function in its expressions must be a built-in function or
one of the read-only ones listed here, matched on the names the planner resolved (spaces, comments and backticks of
the text are gone by then). Admin commands, ``LOAD CSV``, ``CALL { } IN TRANSACTIONS``, writes, schema changes and
every GDS procedure that projects, mutates, writes, exports or generates have no place on the lists: GDS work goes
through ``atlas gds``. Then the statement runs in a managed *read* transaction with a timeout, where the server itself
rejects any write.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import neo4j
from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable, SessionExpired
from neo4j.graph import Node, Path, Relationship

from atlas.db.connection import Graph, translate_errors
from atlas.errors import AtlasError
from atlas.plain import plain as strict_plain

DEFAULT_TIMEOUT = 60.0  # seconds; `--timeout` raises it for a statement known to be long

# Operators that only read, as the planner names them (the part before any "(All)"/"(Into)" mode). Anything else
# (writes, LoadCSV, TransactionApply/TransactionForeach, Show*/Terminate*, AdministrationCommand, ...) is refused.
READ_OPERATORS = frozenset({
    "ProduceResults", "EmptyResult", "EmptyRow", "Argument", "ArgumentTracker", "Projection", "Filter", "Limit",
    "ExhaustiveLimit", "Skip", "Sort", "PartialSort", "Top", "PartialTop", "Distinct", "OrderedDistinct",
    "EagerAggregation", "OrderedAggregation", "NodeCountFromCountStore", "RelationshipCountFromCountStore", "Unwind",
    "Eager", "CacheProperties", "Optional", "Anti", "Union", "OrderedUnion", "CartesianProduct", "NodeHashJoin",
    "ValueHashJoin", "NodeLeftOuterHashJoin", "NodeRightOuterHashJoin", "Apply", "SemiApply", "AntiSemiApply",
    "LetSemiApply", "LetAntiSemiApply", "SelectOrSemiApply", "SelectOrAntiSemiApply", "LetSelectOrSemiApply",
    "LetSelectOrAntiSemiApply", "ConditionalApply", "AntiConditionalApply", "RollUpApply", "TriadicSelection",
    "TriadicBuild", "TriadicFilter", "ProjectEndpoints", "NullifyMetadata", "ProcedureCall",
    "AllNodesScan", "NodeByLabelScan", "IntersectionNodeByLabelsScan", "UnionNodeByLabelsScan",
    "SubtractionNodeByLabelsScan", "NodeByIdSeek", "NodeByElementIdSeek", "NodeIndexScan", "NodeIndexSeek",
    "NodeUniqueIndexSeek", "NodeIndexSeekByRange", "NodeUniqueIndexSeekByRange", "NodeIndexContainsScan",
    "NodeIndexEndsWithScan", "MultiNodeIndexSeek", "AssertingMultiNodeIndexSeek",
    "DirectedAllRelationshipsScan", "UndirectedAllRelationshipsScan", "DirectedRelationshipTypeScan",
    "UndirectedRelationshipTypeScan", "DirectedUnionRelationshipTypesScan", "UndirectedUnionRelationshipTypesScan",
    "DirectedRelationshipByIdSeek", "UndirectedRelationshipByIdSeek", "DirectedRelationshipByElementIdSeek",
    "UndirectedRelationshipByElementIdSeek", "DirectedRelationshipIndexScan", "UndirectedRelationshipIndexScan",
    "DirectedRelationshipIndexSeek", "UndirectedRelationshipIndexSeek", "DirectedRelationshipIndexSeekByRange",
    "UndirectedRelationshipIndexSeekByRange", "DirectedRelationshipIndexContainsScan",
    "UndirectedRelationshipIndexContainsScan", "DirectedRelationshipIndexEndsWithScan",
    "UndirectedRelationshipIndexEndsWithScan", "DirectedRelationshipUniqueIndexSeek",
    "UndirectedRelationshipUniqueIndexSeek", "DirectedRelationshipUniqueIndexSeekByRange",
    "UndirectedRelationshipUniqueIndexSeekByRange",
    "Expand", "OptionalExpand", "VarLengthExpand", "BFSPruningVarExpand", "ShortestPath", "StatefulShortestPath",
    "Repeat", "Trail",
})
# Procedures that read and return, nothing else: schema and index look-ups, versions, and the GDS catalog listing
# (analysts see the projections `atlas gds` made; listing creates, changes and estimates nothing). Not here:
# db.stats.* / db.resample* / db.clearQueryCaches / db.awaitIndex (READ or DBMS mode, yet they change server state
# or block), dbms.listConfig / listConnections / queryJmx (other sessions and settings), every other gds.* procedure.
READ_PROCEDURES = frozenset({
    "db.labels", "db.relationshipTypes", "db.propertyKeys", "db.schema.nodeTypeProperties",
    "db.schema.relTypeProperties", "db.schema.visualization", "db.info", "db.ping",
    "db.index.fulltext.queryNodes", "db.index.fulltext.queryRelationships", "db.index.vector.queryNodes",
    "db.index.vector.queryRelationships", "dbms.components",
    "gds.version", "gds.graph.list", "gds.graph.exists",
})
# Functions beyond Cypher's built-ins (which compute values and cannot change state): GDS helpers that only read.
# Not here: gds.graph.project (an aggregation that creates a projection) and any other plugin function.
READ_FUNCTIONS = frozenset({
    "gds.version", "gds.graph.exists", "gds.util.asNode", "gds.util.asNodes", "gds.util.nodeProperty",
    "gds.util.NaN", "gds.util.infinity", "gds.util.isFinite", "gds.util.isInfinite", "gds.similarity.cosine",
    "gds.similarity.euclidean", "gds.similarity.euclideanDistance", "gds.similarity.jaccard",
    "gds.similarity.overlap", "gds.similarity.pearson",
})

# What the planner writes into expressions besides functions: its own operations (degree look-ups, trail checks) and
# a few of its internal values spelled out as Scala case classes (properties() over cached properties). None can be
# called from Cypher; they are listed so that nothing unknown passes.
PLANNER_NOTATION = frozenset({
    "getDegree", "hasDegree", "hasDegreeGreaterThan", "hasDegreeGreaterThanOrEqual", "hasDegreeLessThan",
    "hasDegreeLessThanOrEqual", "isRepeatTrailUnique", "assertIsNode", "CoerceToPredicate",
    "PropertiesUsingCachedProperties", "Variable", "HashSet", "Set", "CachedProperty", "PropertyKeyName",
})

# In the planner's rendering of expressions, string literals are no calls, and a name in backticks stands for one
# name: an alias like `gds.graph.drop(` is no call, a function whose name needs backticks is an unknown one.
_QUOTED = re.compile(r"`(?:[^`]|``)*`|'(?:\\.|[^'\\])*'|\"(?:\\.|[^\"\\])*\"")
_CALL = re.compile(r"(?<![\w.$`])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\(")
# An index operator names its indexes as "UNIQUE n:Feature(uid)" or "RANGE INDEX (a)-[r:AFFECTS(shard)]->(b)":
# not calls. (Only an undotted name can match, and Neo4j admits no plugin function outside a namespace.)
_INDEX = re.compile(r"(?:^|, )[A-Z ]*(?:\(\w+\)<?-\[)?\w+:\w+\(")
_PREFIX = re.compile(r"(?:\s|//[^\n]*|/\*.*?\*/)*(\w*)", re.DOTALL)
# The plan is asked for by prefixing the statement; the server's error positions count that prefix too.
EXPLAIN = "EXPLAIN "
_POSITION = re.compile(r"\(line (\d+), column (\d+) \(offset: (\d+)\)\)")
_INT64 = (-(1 << 63), (1 << 63) - 1)


@dataclass(frozen=True)
class QueryResult:
    """Columns and rows (plain Python values) of a read-only statement."""

    columns: list[str]
    rows: list[dict[str, Any]]


def _refusal(reason: str) -> AtlasError:
    return AtlasError(f"refused: {reason}; `atlas cypher` and `atlas query` are read-only "
                      "(writes go through `atlas ingest`, `atlas annotate` and `atlas analyze ... --write`, "
                      "GDS work through `atlas gds`)")


def _first_line(message: str | None) -> str:
    return (message or "unknown error").strip().splitlines()[0]


# Statements found read-only and the built-in function names, per server and database: whether a statement writes
# does not depend on its parameters, so a process that runs the same library query many times plans it once.
_READ_ONLY_STATEMENTS: set[tuple[str, str, str]] = set()
_BUILT_IN_FUNCTIONS: dict[tuple[str, str], frozenset[str]] = {}


def _built_in_functions(graph: Graph) -> frozenset[str]:
    """Cypher's built-in function names, lower-case (built-ins are matched case-insensitively, plugins exactly)."""
    key = (graph.settings.uri, graph.database)
    if key not in _BUILT_IN_FUNCTIONS:
        rows = graph.read("SHOW FUNCTIONS YIELD name, isBuiltIn WHERE isBuiltIn RETURN collect(name) AS names")
        _BUILT_IN_FUNCTIONS[key] = frozenset(name.lower() for name in rows[0]["names"])
    return _BUILT_IN_FUNCTIONS[key]


def check_read_only(graph: Graph, statement: str, parameters: Mapping[str, Any] | None = None,
                    timeout: float = DEFAULT_TIMEOUT) -> None:
    """Raise an AtlasError naming the reason unless the server's plan of ``statement`` only reads."""
    key = (graph.settings.uri, graph.database, statement)
    if key in _READ_ONLY_STATEMENTS:
        return
    prefix = _PREFIX.match(statement).group(1).upper()
    if prefix in ("CYPHER", "EXPLAIN", "PROFILE"):
        raise _refusal(f"a {prefix} prefix is not accepted (the read path plans and runs the statement itself)")
    summary = _plan(graph, statement, parameters, timeout)
    if not summary.plan:
        raise _refusal("the server gave no plan for this statement")
    built_in = _built_in_functions(graph)
    for operator, details in _operators(summary.plan):
        name, _, database = operator.partition("@")
        if database and database != graph.database:
            raise _refusal(f"the statement runs on database {database!r}, not {graph.database!r}")
        if name.split("(")[0] not in READ_OPERATORS:
            raise _refusal(f"the plan contains {name}, which is not a read operator")
        if name == "ProcedureCall":
            procedure = details.partition("(")[0].strip()
            if procedure not in READ_PROCEDURES:
                raise _refusal(f"procedure {procedure} is not one of the read-only procedures")
            details = details.partition("(")[2]
        details = _QUOTED.sub(lambda quoted: "quoted_name" if quoted.group().startswith("`") else " ", details)
        if "Index" in name:
            details = _INDEX.sub(" (", details)
        for function in _CALL.findall(details):
            if function.lower() not in built_in and function not in READ_FUNCTIONS | PLANNER_NOTATION:
                raise _refusal(f"function {function} is not one of the read-only functions")
    if summary.query_type != "r":
        kinds = {"w": "writes", "rw": "reads and writes", "s": "changes the schema or the system"}
        raise _refusal(f"the server plans this statement as one that {kinds.get(summary.query_type, 'writes')}")
    _READ_ONLY_STATEMENTS.add(key)


def _operators(plan: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """Every operator of a plan tree with the text of its expressions (details and sort order)."""
    arguments = plan.get("args") or {}
    yield plan["operatorType"], " ".join(str(arguments.get(name, "")) for name in ("Details", "Order"))
    for child in plan.get("children") or []:
        yield from _operators(child)


def _session(graph: Graph) -> neo4j.Session:
    # No retries: an analyst's statement fails once, clearly, instead of being replayed against a stuck server.
    return graph.driver.session(database=graph.database, default_access_mode=neo4j.READ_ACCESS,
                                max_transaction_retry_time=0)


def _without_prefix(message: str, prefix: str) -> str:
    """``message`` with the positions it gives in ``prefix`` + statement moved into the statement itself."""
    def moved(position: re.Match[str]) -> str:
        line, column, offset = (int(number) for number in position.groups())
        if line == 1:
            column = max(1, column - len(prefix))
        return f"(line {line}, column {column} (offset: {max(0, offset - len(prefix))}))"

    return _POSITION.sub(moved, message)


@contextmanager
def _statement_errors(graph: Graph, timeout: float, prefix: str = "") -> Iterator[None]:
    """Server answers about one statement as one line: a syntax error, a limit it hit, a connection it lost.
    ``prefix`` is what the statement ran behind, so that positions point into the user's own text."""
    with translate_errors(graph.settings):
        try:
            yield
        except (ServiceUnavailable, SessionExpired) as error:
            raise AtlasError(f"Neo4j at {graph.settings.uri} did not answer the statement (connection lost or no "
                             "reply within the read timeout): the server may be overloaded or stopped, or the "
                             "statement too deeply nested for it") from error
        except Neo4jError as error:
            code = error.code or ""
            if isinstance(error, AuthError) or ".Security." in code or (
                    "DatabaseNotFound" in code and graph.database in (error.message or "")):
                raise  # credentials or NEO4J_DATABASE: translate_errors names them
            if "AccessMode" in code:
                raise _refusal("the server rejected a write in a read transaction") from error
            if "TransactionTimedOut" in code:
                raise AtlasError(f"the statement ran longer than its {timeout:g} s limit and was stopped "
                                 "(raise it with --timeout)") from error
            if "MemoryPoolOutOfMemoryError" in code:
                raise AtlasError("the statement needed more memory than one transaction may use "
                                 "(db.memory.transaction.max); return fewer or smaller rows") from error
            kind = "Cypher syntax error" if "SyntaxError" in code else "Cypher error"
            raise AtlasError(f"{kind}: {_first_line(_without_prefix(error.message or '', prefix))}") from error


def _plan(graph: Graph, statement: str, parameters: Mapping[str, Any] | None,
          timeout: float) -> neo4j.ResultSummary:
    with _statement_errors(graph, timeout, EXPLAIN), _session(graph) as session:
        return session.run(neo4j.Query(EXPLAIN + statement, timeout=timeout), dict(parameters or {})).consume()


def check_parameters(parameters: Mapping[str, Any]) -> None:
    """Raise an AtlasError naming a parameter whose integer does not fit Cypher's 64-bit integers."""
    def fits(value: Any) -> bool:
        if isinstance(value, int) and not isinstance(value, bool):
            return _INT64[0] <= value <= _INT64[1]
        if isinstance(value, (list, tuple)):
            return all(fits(item) for item in value)
        if isinstance(value, Mapping):
            return all(fits(item) for item in value.values())
        return True

    for name, value in parameters.items():
        if not fits(value):
            raise AtlasError(f"parameter {name} holds an integer beyond 64 bits (Cypher integers are "
                             f"{_INT64[0]}..{_INT64[1]})")


def run_read_only(graph: Graph, statement: str, parameters: Mapping[str, Any] | None = None,
                  timeout: float = DEFAULT_TIMEOUT) -> QueryResult:
    """Check that ``statement`` only reads, then run it in a managed read transaction of at most ``timeout`` seconds
    and return plain rows."""
    parameters = dict(parameters or {})
    check_parameters(parameters)
    check_read_only(graph, statement, parameters, timeout)

    @neo4j.unit_of_work(timeout=timeout)
    def work(tx: neo4j.ManagedTransaction) -> QueryResult:
        result = tx.run(statement, parameters)
        columns = list(result.keys())
        return QueryResult(columns, [{key: plain(record[key]) for key in columns} for record in result])

    with _statement_errors(graph, timeout), _session(graph) as session:
        return session.execute_read(work)


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
