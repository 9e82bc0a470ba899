"""Connections to Neo4j: the managed local server by default, any Neo4j 5 (cluster, Aura) via ``NEO4J_*``.

Every statement goes through managed read or write transaction functions of the official driver, which retry
transient errors and route reads and writes correctly on a cluster. Connection problems a user can fix
(server down, wrong password, missing database) become one-line :class:`~atlas.errors.AtlasError` messages.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from neo4j import Driver, GraphDatabase, ManagedTransaction, RoutingControl
from neo4j.exceptions import AuthError, ConfigurationError, Neo4jError, ServiceUnavailable, SessionExpired

from atlas.db.memory import memory_error
from atlas.errors import AtlasError

if TYPE_CHECKING:
    from graphdatascience import GraphDataScience

T = TypeVar("T")
# The driver logs each transaction retry as a warning; without a handler, logging's last resort prints them on
# stderr. A retried statement either succeeds or fails once as a one-line AtlasError, so the driver stays quiet.
logging.getLogger("neo4j").addHandler(logging.NullHandler())
BOLT_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
# The client never waits without a deadline: connecting (TCP), getting a connection (Bolt handshake and login
# included) and retrying have one here, a statement has its transaction timeout, and a server that stops answering
# is cut off by the read timeout the server announces (twice its Bolt keep-alive; 20 s on the managed server).
CONNECTION_TIMEOUT = 15.0
ACQUISITION_TIMEOUT = 30.0
MAX_RETRY_TIME = 30.0


def redact_uri(uri: str) -> str:
    """``uri`` for messages: a user name and password embedded in it (``bolt://user:secret@host``) become ``***``."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "(an unparseable URI)"
    if "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and as whom to connect; the password is never printed."""

    uri: str
    user: str
    password: str
    database: str
    managed: bool

    @property
    def shown_uri(self) -> str:
        """The URI as messages show it (:func:`redact_uri`)."""
        return redact_uri(self.uri)

    @classmethod
    def from_env(cls) -> ConnectionSettings:
        """``NEO4J_URI``/``NEO4J_USER``/``NEO4J_PASSWORD``/``NEO4J_DATABASE``; without a URI, the managed server."""
        database = os.environ.get("NEO4J_DATABASE", "neo4j")
        if os.environ.get("NEO4J_URI"):
            scheme, separator, _ = os.environ["NEO4J_URI"].partition("://")
            scheme = scheme.lower() if separator else ""
            if scheme not in BOLT_SCHEMES:
                raise AtlasError(f"NEO4J_URI must start with {', '.join(name + '://' for name in BOLT_SCHEMES)} "
                                 f"(the Bolt port, e.g. bolt://localhost:7687), not {scheme or 'no scheme'}://")
            if redact_uri(os.environ["NEO4J_URI"]) != os.environ["NEO4J_URI"]:
                raise AtlasError(f"NEO4J_URI {redact_uri(os.environ['NEO4J_URI'])} carries credentials; give them in "
                                 "NEO4J_USER and NEO4J_PASSWORD instead (a URI ends up in logs and messages)")
            password = os.environ.get("NEO4J_PASSWORD")
            if not password:
                raise AtlasError("NEO4J_URI is set but NEO4J_PASSWORD is not; export the password of that server")
            return cls(os.environ["NEO4J_URI"], os.environ.get("NEO4J_USER", "neo4j"), password, database, False)
        from atlas.db.server import ServerConfig, managed_password

        config = ServerConfig.from_env()
        return cls(config.bolt_uri, "neo4j", managed_password(config), database, True)


class Graph:
    """A driver bound to one database, with read and write helpers that return plain Python data."""

    def __init__(self, driver: Driver, settings: ConnectionSettings):
        self.driver = driver
        self.settings = settings
        self._gds: tuple[GraphDataScience, Driver] | None = None

    @property
    def database(self) -> str:
        return self.settings.database

    @property
    def gds(self) -> GraphDataScience:
        """The graphdatascience client on this driver (same credentials and database), over Bolt; made again when
        the driver was replaced (e.g. a reconnect after an offline import), never left on a closed one."""
        from graphdatascience import GraphDataScience

        if self._gds is None or self._gds[1] is not self.driver:
            with translate_errors(self.settings):
                client = GraphDataScience(self.driver, database=self.database, arrow=False, show_progress=False)
            self._gds = (client, self.driver)
        return self._gds[0]

    def read(self, query: str, **parameters: Any) -> list[dict[str, Any]]:
        """Run a parameterised read query (routed to a reader on a cluster) and return its rows as dicts."""
        return [record.data() for record in self._read_records(query, parameters)]

    def read_values(self, query: str, **parameters: Any) -> list[dict[str, Any]]:
        """:meth:`read` for statements that return plain values only (numbers, strings, lists, maps: no nodes or
        relationships), as they arrive: the driver's ``data()`` converts every value again, one by one, which costs
        a few tenths of a second per statement on a projection's parallel lists (benchmarks/README.md)."""
        return [dict(record) for record in self._read_records(query, parameters)]

    def _read_records(self, query: str, parameters: dict[str, Any]) -> list[Any]:
        """The driver's records of one read query, routed to a reader on a cluster."""
        with translate_errors(self.settings):
            records, _, _ = self.driver.execute_query(
                query, parameters, database_=self.database, routing_=RoutingControl.READ
            )
        return records

    def write(self, query: str, **parameters: Any) -> dict[str, int]:
        """Run a parameterised write query in one retried transaction; return its update counters."""
        with translate_errors(self.settings):
            _, summary, _ = self.driver.execute_query(
                query, parameters, database_=self.database, routing_=RoutingControl.WRITE
            )
        return {key: value for key, value in vars(summary.counters).items() if not key.startswith("_")}

    def autocommit(self, query: str, **parameters: Any) -> dict[str, int]:
        """Run one statement in an auto-commit transaction: needed for ``CALL { ... } IN TRANSACTIONS``."""
        with translate_errors(self.settings), self.driver.session(database=self.database) as session:
            summary = session.run(query, parameters).consume()
        return {key: value for key, value in vars(summary.counters).items() if not key.startswith("_")}

    def read_transaction(self, work: Callable[[ManagedTransaction], T]) -> T:
        """Run ``work(tx)`` in a managed read transaction (retried on transient errors)."""
        with translate_errors(self.settings), self.driver.session(database=self.database) as session:
            return session.execute_read(work)

    def write_transaction(self, work: Callable[[ManagedTransaction], T]) -> T:
        """Run ``work(tx)`` in a managed write transaction (retried on transient errors)."""
        with translate_errors(self.settings), self.driver.session(database=self.database) as session:
            return session.execute_write(work)

    def server_versions(self) -> tuple[str, str, str | None]:
        """Neo4j version, edition and GDS version (None when the GDS plugin is absent), as the server reports them."""
        component = self.read("CALL dbms.components() YIELD name, versions, edition "
                              "WHERE name = 'Neo4j Kernel' RETURN versions[0] AS version, edition")[0]
        try:
            gds_version = self.read("RETURN gds.version() AS version")[0]["version"]
        except AtlasError:
            gds_version = None
        return component["version"], component["edition"], gds_version

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextmanager
def translate_errors(settings: ConnectionSettings) -> Iterator[None]:
    """Turn connection and authentication failures, and the server's answers that memory ran out (or would have),
    into one-line AtlasErrors; other errors pass unchanged."""
    try:
        yield
    except AuthError as error:
        raise AtlasError(f"Neo4j at {settings.shown_uri} refused the credentials of user '{settings.user}' "
                         "(check NEO4J_USER / NEO4J_PASSWORD)") from error
    except (ServiceUnavailable, SessionExpired) as error:
        hint = "start it with `atlas db start`" if settings.managed else "check NEO4J_URI and that the server runs"
        raise AtlasError(f"cannot reach Neo4j at {settings.shown_uri}: {hint}") from error
    except Neo4jError as error:
        if "AuthenticationRateLimit" in (error.code or ""):
            raise AtlasError(f"Neo4j at {settings.uri} locked user '{settings.user}' out for a few seconds after "
                             "repeated failed logins (check NEO4J_USER / NEO4J_PASSWORD, then retry)") from error
        if error.code and "DatabaseNotFound" in error.code:
            raise AtlasError(f"database '{settings.database}' does not exist on {settings.shown_uri} "
                             "(check NEO4J_DATABASE)") from error
        if "ProcedureNotFound" in (error.code or "") or "Unknown function" in (error.message or ""):
            hint = f"is the Graph Data Science plugin installed on {settings.shown_uri}?"
            raise AtlasError(f"{error.message} ({hint})") from error
        memory = memory_error(error)
        if memory is not None:
            raise memory from error
        raise


def connect(settings: ConnectionSettings | None = None, **driver_config: Any) -> Graph:
    """Open a :class:`Graph` and check that the server answers with these credentials; ``driver_config`` goes to the
    driver (e.g. a shorter ``max_transaction_retry_time`` for a web request)."""
    settings = settings or ConnectionSettings.from_env()
    options = {"connection_timeout": CONNECTION_TIMEOUT, "connection_acquisition_timeout": ACQUISITION_TIMEOUT,
               "max_transaction_retry_time": MAX_RETRY_TIME, **driver_config}
    try:
        driver = GraphDatabase.driver(settings.uri, auth=(settings.user, settings.password), **options)
    except (ConfigurationError, ValueError) as error:
        # The driver's message may quote the URI, credentials included: name the rule instead.
        raise AtlasError("NEO4J_URI is not a Neo4j Bolt address: use scheme://host[:port] with no "
                         "user:password@, path, query or fragment (credentials go in NEO4J_USER / NEO4J_PASSWORD)"
                         ) from error
    try:
        with translate_errors(settings):
            driver.verify_connectivity()
    except BaseException:
        driver.close()
        raise
    return Graph(driver, settings)
