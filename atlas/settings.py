"""Where Circuit Atlas keeps its files, and the environment variables that move them."""

from __future__ import annotations

import os
from pathlib import Path


def atlas_home() -> Path:
    """The managed instance directory (server config, data, logs, password): ``$ATLAS_HOME`` or ``~/.circuit-atlas``."""
    return Path(os.environ.get("ATLAS_HOME") or Path.home() / ".circuit-atlas").expanduser().resolve()


def cache_dir() -> Path:
    """Downloaded artifacts shared by every instance: ``$ATLAS_CACHE_DIR`` or ``~/.cache/circuit-atlas``."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "circuit-atlas"
    return Path(os.environ.get("ATLAS_CACHE_DIR") or default).expanduser().resolve()


def maven_repository() -> str:
    """The Maven repository the server's jars come from: ``$ATLAS_MAVEN_REPOSITORY`` (a mirror, a proxy) or Maven
    Central."""
    return os.environ.get("ATLAS_MAVEN_REPOSITORY") or "https://repo.maven.apache.org/maven2"
