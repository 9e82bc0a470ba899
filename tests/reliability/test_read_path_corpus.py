"""A hostile corpus against the read path (`atlas cypher`, `atlas query`, :func:`queries.readonly.run_read_only`).

Every attempt is refused in one line, never a traceback, and is followed by a snapshot proving that nothing changed:
the graph's content, its tokens and schema, the GDS catalog, the files of the store, the users, and a transaction
another session holds open. Positive controls show that the library and typical analyst Cypher still run.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import neo4j
import pytest

import queries
from atlas.db.server import ServerConfig
from atlas.errors import AtlasError
from loaders.online import ingest_run
from queries.readonly import check_read_only, run_read_only
from tests.cli import run_atlas
from tests.conftest import wipe
from tests.reliability.checksum import GraphChecksum, graph_checksum
from tests.reliability.processes import error_lines

pytestmark = pytest.mark.neo4j

CANARY = "<the id of another session's open transaction>"
TOO_BIG = 99999999999999999999


@dataclass(frozen=True)
class Attempt:
    """One hostile statement of a class, with its parameters (CANARY is replaced by the canary's transaction id)."""

    kind: str
    statement: str
    parameters: tuple[tuple[str, Any], ...] = ()


def _attempts(kind: str, *statements: str | tuple[str, dict[str, Any]]) -> list[Attempt]:
    return [Attempt(kind, item) if isinstance(item, str) else Attempt(kind, item[0], tuple(item[1].items()))
            for item in statements]


CORPUS = [
    *_attempts(
        "plain writes",
        "CREATE (n:Pwned) RETURN n", "create (n:Pwned)", "MERGE (n:Feature {uid: 'pwned'}) RETURN n",
        "MATCH (n:Feature) SET n.pwned = true RETURN count(n)", "MATCH (n:Feature) WITH n LIMIT 1 DELETE n",
        "MATCH (n) DETACH DELETE n", "MATCH (n:Feature) REMOVE n.uid RETURN count(n)",
        "MATCH (n:Feature) SET n:Pwned RETURN count(n)", "MATCH (n:Feature) /* harmless */ SET n.x = 1",
        "MATCH (n:Feature) FOREACH (x IN [1] | SET n.x = x)", "MATCH (n:Feature) SET n += {pwned: 1} RETURN 1",
        "UNWIND range(1, 3) AS i CREATE (:Pwned {i: i})", "MATCH ()-[r:AFFECTS]->() WITH r LIMIT 1 DELETE r",
        "MATCH (n:Feature) REMOVE n:Feature RETURN count(n)",
    ),
    *_attempts(
        "schema changes",
        "CREATE INDEX pwned IF NOT EXISTS FOR (n:Feature) ON (n.pwned)", "DROP CONSTRAINT feature_uid_unique",
        "CREATE CONSTRAINT pwned FOR (n:Pwned) REQUIRE n.id IS UNIQUE", "DROP INDEX affects_shard IF EXISTS",
        "CREATE FULLTEXT INDEX pwned FOR (n:Feature) ON EACH [n.label]",
    ),
    *_attempts(
        "disguised procedure names",
        "CALL db . createLabel ('Pwned')", "CALL db./* c */createLabel('Pwned')", "CALL `db`.`createLabel`('Pwned')",
        "CALL `db`.createProperty('pwned')", "CALL db\n.\ncreateRelationshipType\n('PWNED')",
        "CALL db // comment\n.createLabel('Pwned')", ("CALL db.createLabel", {"newLabel": "Pwned"}),
        ("CALL db.createProperty", {"newProperty": "pwned"}),
        ("CALL gds.graph.project", {"graphName": "pwned", "nodeProjection": "Feature",
                                    "relationshipProjection": "AFFECTS"}),
        ("CALL gds . graph . drop", {"graphName": "pwned"}), "CALL gds.graph.`project`('pwned', 'Feature', 'AFFECTS')",
        "CALL `gds`.`graph`.`project`('pwned', 'Feature', 'AFFECTS')",
        "CALL gds /* x */ . graph . project('pwned', 'Feature', 'AFFECTS')",
        "CALL db.labels() YIELD label CALL db.createLabel(label + 'X') RETURN label",
        "CALL db.labels() YIELD label AS x CALL db.createProperty(x) RETURN 1",
    ),
    *_attempts(
        "GDS procedures",
        "CALL gds.graph.project('pwned', 'Feature', 'AFFECTS')",
        "CALL gds.graph.project.cypher('pwned', 'MATCH (n) RETURN id(n) AS id', "
        "'MATCH (a)-->(b) RETURN id(a) AS source, id(b) AS target')",
        "CALL gds.graph.drop('pwned', false)", "CALL gds.graph.generate('pwned', 10, 2)",
        "CALL gds.graph.filter('pwned2', 'pwned', '*', '*')", "CALL gds.graph.export('pwned', {dbName: 'pwned'})",
        "CALL gds.graph.export.csv('pwned', {exportName: 'pwned'})",
        "CALL gds.graph.nodeProperties.drop('pwned', ['pr'])", "CALL gds.graph.relationships.toUndirected('pwned', "
        "{relationshipType: 'AFFECTS', mutateRelationshipType: 'U'})",
        "CALL gds.graph.sample.rwr('pwned2', 'pwned', {samplingRatio: 0.5})",
        "CALL gds.pageRank.write('pwned', {writeProperty: 'pr'})", "CALL gds.pageRank.mutate('pwned', "
        "{mutateProperty: 'pr'})", "CALL gds.pageRank.stream('pwned')", "CALL gds.wcc.write('pwned', "
        "{writeProperty: 'c'})", "CALL gds.degree.stats('pwned')", "CALL gds.pageRank.write.estimate('pwned', {})",
        "CALL gds.model.drop('pwned')", "CALL gds.pipeline.drop('pwned')", "CALL gds.debug.sysInfo()",
        "CALL gds.listProgress()", "CALL gds.alpha.graph.nodeLabel.mutate('pwned', 'X', {nodeFilter: '*'})",
        "CALL gds.graph.nodeProperties.write('pwned', ['pr'])",
    ),
    *_attempts(
        "GDS functions in expressions",
        "MATCH (s:Feature)-[:AFFECTS]->(t:Feature) RETURN gds.graph.project('pwned', s, t)",
        "MATCH (s)-[:AFFECTS]->(t) WITH gds.graph.project('pwned', s, t) AS g RETURN g.graphName",
        "MATCH (s)-[:AFFECTS]->(t) RETURN gds . graph . `project`('pwned', s, t) AS g",
        "MATCH (s)-[:AFFECTS]->(t) RETURN `gds`.`graph`.`project`('pwned', s, t) AS `gds.version`",
        "MATCH (s)-[:AFFECTS]->(t) RETURN gds./*x*/graph.project('pwned', s, t) AS g",
        "CALL { MATCH (s)-[:AFFECTS]->(t) RETURN gds.graph.project('pwned', s, t) AS g } RETURN g",
        "MATCH (f:Feature) RETURN COLLECT { MATCH (f)-[:AFFECTS]->(t) RETURN gds.graph.project('p', f, t) } AS g",
        "MATCH (n) RETURN 1 AS x UNION MATCH (s)-->(t) RETURN gds.graph.project('pwned', s, t) AS x",
        "MATCH (s)-[:AFFECTS]->(t) RETURN CASE WHEN true THEN gds.graph.project('pwned', s, t) END AS g",
        "MATCH (s)-[:AFFECTS]->(t) RETURN size(keys(gds.graph.project('pwned', s, t))) AS g",
    ),
    *_attempts(
        "admin commands and aliases",
        ("TERMINATE TRANSACTIONS $tx", {"tx": CANARY}),
        ("TERMINATE TRANSACTIONS $tx YIELD message AS `as` RETURN `as`", {"tx": CANARY}),
        ("TERMINATE TRANSACTION $tx YIELD transactionId AS x RETURN x AS as", {"tx": CANARY}),
        ("SHOW TRANSACTIONS YIELD transactionId AS t WHERE t = $tx TERMINATE TRANSACTIONS t", {"tx": CANARY}),
        "SHOW TRANSACTIONS", "SHOW SETTINGS YIELD name, value RETURN name AS as, value",
        "SHOW USERS", "SHOW DATABASES", "CREATE USER pwned SET PASSWORD 'pwned-password-1'",
        "ALTER USER neo4j SET PASSWORD 'pwned-password-1'", "DROP USER neo4j",
        "ALTER CURRENT USER SET PASSWORD FROM 'x' TO 'pwned-password-1'", "STOP DATABASE neo4j",
        "CREATE DATABASE pwned", "SHOW PROCEDURES YIELD name RETURN name AS `TERMINATE`",
    ),
    *_attempts(
        "LOAD CSV",
        "LOAD CSV FROM 'file:///secret.csv' AS row RETURN row",
        "LOAD CSV WITH HEADERS FROM 'file:///secret.csv' AS `as` RETURN `as`",
        ("LOAD CSV FROM $url AS row RETURN row", {"url": "file:///secret.csv"}),
        "CALL { LOAD CSV FROM 'file:///secret.csv' AS row RETURN row } RETURN row",
        "MATCH (n) RETURN 1 AS x UNION LOAD CSV FROM 'file:///secret.csv' AS x RETURN x",
        "LOAD CSV FROM 'http://127.0.0.1:1/x.csv' AS row RETURN row",
        "LOAD\u00a0CSV FROM 'file:///secret.csv' AS row RETURN row",
    ),
    *_attempts(
        "state-changing db./dbms. procedures",
        "CALL db.stats.collect('QUERIES')", "CALL db.stats.clear('QUERIES')", "CALL db.stats.stop('QUERIES')",
        "CALL db.clearQueryCaches()", "CALL db.resampleOutdatedIndexes()", "CALL db.resampleIndex('affects_shard')",
        "CALL db.prepareForReplanning()", "CALL db.awaitIndexes(300)",
        "MATCH (n:Feature) WITH n LIMIT 1 CALL db.create.setNodeVectorProperty(n, 'v', [1.0, 2.0])",
        "CALL db.index.vector.createNodeIndex('pwned', 'Feature', 'v', 2, 'cosine')",
        "CALL dbms.killConnections(['bolt-1'])", "CALL dbms.killConnection('bolt-1')",
        "CALL tx.setMetaData({pwned: true})", "CALL dbms.listConfig()", "CALL dbms.listConnections()",
        "CALL dbms.queryJmx('*:*')", "CALL dbms.upgrade()", "CALL db.createLabel('Pwned')",
        "CALL db.createProperty('pwned')", "CALL db.createRelationshipType('PWNED')",
    ),
    *_attempts(
        "apoc-like and unknown procedures",
        "CALL apoc.create.node(['Pwned'], {})", "CALL apoc.cypher.doIt('CREATE (:Pwned)', {})",
        "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'SET n.x = 1', {})",
        "CALL apoc.load.json('file:///secret.csv')", "RETURN apoc.text.join(['a'], 'b') AS x",
    ),
    *_attempts(
        "CALL subqueries and IN TRANSACTIONS",
        "CALL { CREATE (:Pwned) } IN TRANSACTIONS", "CALL { MATCH (n) RETURN n } IN TRANSACTIONS RETURN count(n)",
        "MATCH (n:Feature) CALL (n) { SET n.x = 1 } IN TRANSACTIONS OF 10 ROWS",
        "CALL () { CREATE (p:Pwned) RETURN p } RETURN p", "OPTIONAL CALL { CREATE (p:Pwned) RETURN p } RETURN p",
        "CALL { CALL { CREATE (p:Pwned) RETURN p } RETURN p } RETURN p",
        "MATCH (n:Feature) CALL (n) { MATCH (n)-->(m) RETURN m } IN CONCURRENT TRANSACTIONS RETURN count(m)",
    ),
    *_attempts(
        "UNION tricks",
        "MATCH (n) RETURN 1 AS x UNION CREATE (p:Pwned) RETURN 2 AS x",
        "RETURN 1 AS x UNION ALL CALL db.createLabel('Pwned') YIELD * RETURN 2 AS x",
        "RETURN 1 AS x UNION CALL gds.graph.project('pwned', 'Feature', 'AFFECTS') YIELD graphName RETURN 2 AS x",
        ("RETURN 1 AS x UNION TERMINATE TRANSACTIONS $tx YIELD message RETURN 2 AS x", {"tx": CANARY}),
    ),
    *_attempts(
        "prefixes and other databases",
        "EXPLAIN CREATE (n:Pwned)", "PROFILE CREATE (n:Pwned)", "CYPHER 5 CREATE (n:Pwned)",
        "CYPHER runtime=slotted MATCH (n) RETURN count(n)", "/* x */ CYPHER replan=force CREATE (:Pwned)",
        "// c\nPROFILE MATCH (n) SET n.x = 1", "USE system SHOW USERS", "USE system CALL dbms.components()",
        "USE neo4j CREATE (:Pwned)", "USE pwned MATCH (n) RETURN n",
    ),
    *_attempts(
        "multiple statements",
        "MATCH (n) RETURN count(n); CREATE (:Pwned)", "RETURN 1;; CALL db.createLabel('Pwned')",
        "RETURN 1 /* ; */ ; // \nCREATE (:Pwned)", "RETURN 1;\nTERMINATE TRANSACTIONS 'neo4j-transaction-1'",
    ),
    *_attempts(
        "unicode lookalikes",
        "\uff23\uff32\uff25\uff21\uff34\uff25 (n:Pwned)", "\u0421REATE (n:Pwned)", "CALL db.createLabel\u200b('Pwned')",
        "MATCH (n) RETURN n\u037e CREATE (m:Pwned)", "CALL gds\u2024graph\u2024project('pwned', 'Feature', 'AFFECTS')",
        ("TERMINATE\u2003TRANSACTIONS $tx", {"tx": CANARY}), "MATCH (n) \u0053ET n.x = 1",
    ),
    *_attempts(
        "parameters",
        ("RETURN $n AS n", {"n": TOO_BIG}), ("RETURN $n AS n", {"n": -TOO_BIG}),
        ("RETURN $n AS n", {"n": [1, [2, TOO_BIG]]}), ("RETURN $n AS n", {"n": {"deep": {"er": TOO_BIG}}}),
        ("CALL $name", {"name": "db.createLabel"}), ("UNWIND $rows AS row RETURN row.n", {"rows": [{"n": TOO_BIG}]}),
    ),
]


@dataclass(frozen=True)
class Snapshot:
    """Everything a read-path statement must leave as it found."""

    graph: GraphChecksum
    tokens: tuple
    schema: tuple
    gds_catalog: tuple
    users: tuple
    store_files: tuple
    canary_alive: bool


class Canary:
    """Another session's open read transaction, which no read-path statement may end."""

    def __init__(self, graph):
        self.session = graph.driver.session(database=graph.database, default_access_mode=neo4j.READ_ACCESS)
        self.transaction = self.session.begin_transaction(metadata={"canary": "read-path-corpus"})
        self.transaction.run("MATCH (n) RETURN count(n)").consume()
        rows = graph.read("SHOW TRANSACTIONS YIELD transactionId, metaData "
                          "WHERE metaData.canary = 'read-path-corpus' RETURN transactionId")
        self.id = rows[0]["transactionId"]

    def alive(self) -> bool:
        try:
            return self.transaction.run("RETURN 1 AS one").single()["one"] == 1
        except neo4j.exceptions.Neo4jError:
            return False

    def close(self) -> None:
        self.session.close()


def _store_files() -> tuple:
    """The managed instance's database and transaction-log directories and its import files (names, not contents:
    checkpoints rewrite the store; a GDS export or a new database adds directories)."""
    if os.environ.get("NEO4J_URI"):
        return ()
    home = ServerConfig.from_env().home
    folders = [path for path in (home / "data").rglob("*") if path.is_dir()]
    return tuple(sorted(str(path.relative_to(home)) for path in [*folders, *(home / "import").rglob("*")]))


def snapshot(graph, canary: Canary) -> Snapshot:
    def names(query: str, **kwargs: Any) -> tuple:
        return tuple(sorted(str(sorted(row.items())) for row in graph.read(query, **kwargs)))

    users, _, _ = graph.driver.execute_query("SHOW USERS", database_="system")
    return Snapshot(
        graph=graph_checksum(graph),
        tokens=(names("CALL db.labels()"), names("CALL db.relationshipTypes()"), names("CALL db.propertyKeys()")),
        schema=(names("SHOW INDEXES YIELD name, state RETURN name, state"), names("SHOW CONSTRAINTS YIELD name")),
        gds_catalog=(names("CALL gds.graph.list() YIELD graphName RETURN graphName"),
                     names("CALL gds.model.list() YIELD modelName RETURN modelName"),
                     names("CALL gds.pipeline.list() YIELD pipelineName RETURN pipelineName")),
        users=tuple(sorted(str(sorted(record.data().items())) for record in users)),
        store_files=_store_files(),
        canary_alive=canary.alive(),
    )


@pytest.fixture(scope="module")
def hostile_setting(graph, small_run):
    """A small run in the graph, a secret file in the import directory, and another session's open transaction."""
    wipe(graph)
    ingest_run(graph, small_run)
    secret = None
    if not os.environ.get("NEO4J_URI"):
        secret = ServerConfig.from_env().home / "import" / "secret.csv"
        secret.write_text("not,for,analysts\n")
    canary = Canary(graph)
    yield graph, canary
    canary.close()
    if secret is not None:
        secret.unlink(missing_ok=True)


def _parameters(attempt: Attempt, canary: Canary) -> dict[str, Any]:
    return {key: canary.id if value == CANARY else value for key, value in attempt.parameters}


def test_the_corpus_covers_every_class_with_over_100_attempts():
    kinds = Counter(attempt.kind for attempt in CORPUS)
    assert len(CORPUS) >= 100 and min(kinds.values()) >= 4, kinds
    assert len({(attempt.statement, repr(attempt.parameters)) for attempt in CORPUS}) == len(CORPUS)


def test_every_hostile_read_is_refused_in_one_line_and_changes_nothing(hostile_setting):
    graph, canary = hostile_setting
    before = snapshot(graph, canary)
    assert before.canary_alive
    table: dict[str, Counter] = {}
    failures = []
    for attempt in CORPUS:
        counts = table.setdefault(attempt.kind, Counter())
        counts["attempts"] += 1
        try:
            run_read_only(graph, attempt.statement, _parameters(attempt, canary))
            failures.append(f"ran: {attempt}")
        except AtlasError as error:
            if "\n" in str(error):
                failures.append(f"several lines: {attempt}: {error}")
            else:
                counts["refused in one line"] += 1
        except Exception as error:  # noqa: BLE001 - a traceback is what this test counts
            counts["tracebacks"] += 1
            failures.append(f"traceback {type(error).__name__}: {attempt}: {error}")
        after = snapshot(graph, canary)
        if after != before:
            counts["state changed"] += 1
            failures.append(f"state changed: {attempt}: {_difference(before, after)}")
    print("\n" + _table(table))
    assert failures == [], "\n".join(failures) + "\n" + _table(table)


def _difference(before: Snapshot, after: Snapshot) -> list[str]:
    return [name for name in Snapshot.__dataclass_fields__ if getattr(before, name) != getattr(after, name)]


def _table(table: dict[str, Counter]) -> str:
    columns = ["attempts", "refused in one line", "tracebacks", "state changed"]
    width = max(len(kind) for kind in table) + 2
    lines = ["class".ljust(width) + " | ".join(columns)]
    total = Counter()
    for kind, counts in table.items():
        total.update(counts)
        lines.append(kind.ljust(width) + " | ".join(str(counts[name]).rjust(len(name)) for name in columns))
    lines.append("total".ljust(width) + " | ".join(str(total[name]).rjust(len(name)) for name in columns))
    return "\n".join(lines)


# One or two of each class through the real command line, as an analyst would type them.
CLI_ATTEMPTS = [attempt for index, attempt in enumerate(CORPUS)
                if index == next(i for i, other in enumerate(CORPUS) if other.kind == attempt.kind)
                or attempt.statement in (
                    "MATCH (s)-[:AFFECTS]->(t) RETURN gds . graph . `project`('pwned', s, t) AS g",
                    "TERMINATE TRANSACTIONS $tx YIELD message AS `as` RETURN `as`",
                    "LOAD CSV WITH HEADERS FROM 'file:///secret.csv' AS `as` RETURN `as`",
                    "CALL { MATCH (n) RETURN n } IN TRANSACTIONS RETURN count(n)", "USE system SHOW USERS",
                    "CYPHER 5 CREATE (n:Pwned)", "CALL gds.graph.generate('pwned', 10, 2)")]


@pytest.mark.parametrize("attempt", CLI_ATTEMPTS, ids=lambda attempt: f"{attempt.kind}: {attempt.statement[:40]}")
def test_atlas_cypher_refuses_in_one_line_and_changes_nothing(attempt, hostile_setting):
    graph, canary = hostile_setting
    before = snapshot(graph, canary)
    arguments = [argument for key, value in _parameters(attempt, canary).items()
                 for argument in ("-p", f"{key}={value if isinstance(value, str) else json.dumps(value)}")]
    done = run_atlas("cypher", attempt.statement, *arguments, "--json")
    lines = error_lines(done.stderr)
    assert done.returncode == 1 and len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert snapshot(graph, canary) == before


@pytest.mark.parametrize(("name", "parameter"), [
    ("hubs", f"limit={TOO_BIG}"), ("feature_edges", f"uid={TOO_BIG}"), ("hubs", "run=x' OR 1=1 //"),
    ("features_by_gene", "gene=a`) CREATE (p:Pwned) //"),
])
def test_atlas_query_parameters_cannot_write_or_crash(name, parameter, hostile_setting):
    graph, canary = hostile_setting
    before = snapshot(graph, canary)
    done = run_atlas("query", name, "-p", parameter, "--json")
    assert "Traceback" not in done.stderr
    if done.returncode:
        assert done.returncode == 1 and len(error_lines(done.stderr)) == 1, done.stderr
    assert snapshot(graph, canary) == before


# --- positive controls -------------------------------------------------------------------------------------------

ANALYST_CYPHER = [
    "MATCH (f:Feature)-[r:AFFECTS]->() RETURN f.uid AS uid, count(r) AS edges ORDER BY edges DESC LIMIT 5",
    "CALL () { MATCH (run:Run {id: 'reliability-small'}) UNWIND run.visible AS key RETURN collect(key) AS visible } "
    "MATCH (f:Feature)-[r:AFFECTS]->() WHERE r.shard IN visible RETURN f.uid, count(r) AS edges LIMIT 3",
    "MATCH (f:Feature {uid: $uid}) RETURN f.layer AS layer, TOUPPER(f.uid) AS loud, toLower(f.uid) AS quiet",
    "MATCH (r:Run) RETURN r.id AS run, r.status AS status, size(r.visible) AS shards",
    "MATCH (f:Feature) WHERE EXISTS { (f)-[:AFFECTS]->() } RETURN count(f) AS sources",
    "MATCH (f:Feature) RETURN f.layer AS layer, COUNT { (f)-[:AFFECTS]->() } AS out ORDER BY out DESC LIMIT 3",
    "MATCH (f:Feature) OPTIONAL MATCH (f)-[:TOP_GENE]->(g:Gene) RETURN f.uid, collect(g.symbol)[..3] AS genes "
    "LIMIT 3",
    "MATCH (a:Feature)-[:AFFECTS]->(b) WITH a, collect(DISTINCT b.layer) AS layers RETURN a.uid, layers LIMIT 2",
    "MATCH p = (a:Feature)-[:AFFECTS*1..2]->(b:Feature) RETURN length(p) AS hops, count(*) AS paths",
    "MATCH (a:Feature)((x)-[:AFFECTS]->(y)){1,2}(b) RETURN count(*) AS walks",
    "MATCH (f:Feature) RETURN f{.uid, .layer, kind: CASE WHEN f.layer > 1 THEN 'late' ELSE 'early' END} AS f "
    "LIMIT 2",
    "UNWIND [1, 2, 3] AS x RETURN x, [y IN range(1, x) WHERE y % 2 = 1 | y * x] AS odd, "
    "reduce(s = 0, y IN range(1, x) | s + y) AS total",
    "MATCH (f:Feature) RETURN f.layer AS layer, count(*) AS n UNION ALL RETURN -1 AS layer, 0 AS n",
    "MATCH ()-[r:AFFECTS]->() RETURN r.sign AS sign, avg(r.d) AS mean_d, percentileCont(abs(r.d), 0.5) AS median",
    "RETURN 'CREATE (n) SET n.x = 1; LOAD CSV' AS text, $value AS `gds.graph.drop(`, gds.version() AS gds",
    "CALL db.labels() YIELD label RETURN label ORDER BY label",
    "CALL db.schema.nodeTypeProperties() YIELD nodeType, propertyName RETURN count(*) AS properties",
    "CALL gds.graph.list() YIELD graphName RETURN graphName",
    "RETURN gds.util.isFinite(1.0) AS finite, gds.similarity.cosine([1.0, 0.0], [1.0, 0.0]) AS same",
    "MATCH (f:Feature) WITH f ORDER BY f.uid SKIP 1 LIMIT 2 RETURN f.uid AS uid",
    "MATCH p = shortestPath((a:Feature)-[:AFFECTS*..4]->(b:Feature)) WHERE a <> b RETURN length(p) LIMIT 1",
]


def test_typical_analyst_cypher_still_runs(hostile_setting):
    graph, _ = hostile_setting
    uid = graph.read("MATCH (f:Feature) RETURN f.uid AS uid LIMIT 1")[0]["uid"]
    for statement in ANALYST_CYPHER:
        parameters = {"uid": uid, "value": "DELETE"}
        result = run_read_only(graph, statement, parameters)
        assert result.columns, statement


def test_every_library_query_passes_the_plan_check(hostile_setting):
    graph, _ = hostile_setting
    samples = {"str": "x", "int": 1, "float": 0.5, "bool": True, "str[]": ["x"], "int[]": [1]}
    for named in queries.library().values():
        parameters = {name: samples[parameter.type] for name, parameter in named.parameters.items()}
        check_read_only(graph, named.text, parameters)


def test_atlas_query_list_and_a_library_query_run_from_the_command_line(hostile_setting):
    listing = run_atlas("query", "--list", "--json")
    assert listing.returncode == 0, listing.stderr
    done = run_atlas("query", "hubs", "-p", "run=reliability-small", "-p", "limit=3", "--json")
    assert done.returncode == 0 and done.stdout.startswith("["), done.stderr

