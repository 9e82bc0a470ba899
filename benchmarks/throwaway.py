"""A benchmark's own managed Neo4j: its own ATLAS_HOME and free ports, so the user's atlas (or a NEO4J_URI server)
is never touched. Call :func:`use_throwaway_instance` before anything reads the server settings."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def use_throwaway_instance(home: Path, memory: str | None = None) -> None:
    """Point this process's managed-server settings at ``home`` on free Bolt and HTTP ports and forget any NEO4J_URI
    server; with ``memory``, heap and page cache get that size each unless ATLAS_NEO4J_HEAP / ATLAS_NEO4J_PAGECACHE
    already say otherwise."""
    os.environ.update(ATLAS_HOME=str(home), ATLAS_BOLT_PORT=str(free_port()), ATLAS_HTTP_PORT=str(free_port()))
    if memory is not None:
        for name in ("ATLAS_NEO4J_HEAP", "ATLAS_NEO4J_PAGECACHE"):
            os.environ.setdefault(name, memory)
    for name in ("NEO4J_URI", "NEO4J_PASSWORD", "NEO4J_DATABASE"):
        os.environ.pop(name, None)
