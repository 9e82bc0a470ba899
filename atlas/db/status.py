"""What `atlas db status` reports: the managed server's process and settings, and the versions the server itself
gives (Neo4j, edition, GDS) for the managed server or the one ``NEO4J_URI`` names."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from atlas.db.connection import connect
from atlas.db.server import ServerConfig, running_pid


@dataclass
class ServerStatus:
    """The managed server's state; versions are None while it is down."""

    running: bool
    pid: int | None
    uri: str
    neo4j_version: str | None
    neo4j_edition: str | None
    gds_version: str | None
    bolt_port: int
    http_port: int
    home: str
    data_dir: str
    log_dir: str
    heap: str
    pagecache: str

    def as_dict(self) -> dict:
        """The fields as a plain dict."""
        return asdict(self)


def managed_status(config: ServerConfig | None = None) -> ServerStatus:
    """Report whether the managed server runs and, from the server itself, the Neo4j and GDS versions."""
    config = config or ServerConfig.from_env()
    pid = running_pid(config)
    neo4j_version = edition = gds_version = None
    if pid is not None:
        with connect() as graph:
            neo4j_version, edition, gds_version = graph.server_versions()
    return ServerStatus(
        running=pid is not None, pid=pid, uri=config.bolt_uri, neo4j_version=neo4j_version,
        neo4j_edition=edition, gds_version=gds_version, bolt_port=config.bolt_port, http_port=config.http_port,
        home=str(config.home), data_dir=str(config.home / "data"), log_dir=str(config.home / "logs"),
        heap=config.heap, pagecache=config.pagecache,
    )


def status() -> dict[str, Any]:
    """The status of the server this process would use: ``NEO4J_URI``'s when set, else the managed one's."""
    if not os.environ.get("NEO4J_URI"):
        return managed_status().as_dict()
    with connect() as graph:
        version, edition, gds = graph.server_versions()
        return {"running": True, "uri": graph.settings.shown_uri, "database": graph.database,
                "neo4j_version": version, "neo4j_edition": edition, "gds_version": gds}
