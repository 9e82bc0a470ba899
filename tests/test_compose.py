"""docker/compose.yml against the managed server: the same pinned versions, the same server settings, an explorer
next to Neo4j, and no password default (checked by parsing the files: no Docker engine needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from atlas.db import artifacts, server

DOCKER = Path(__file__).resolve().parent.parent / "docker"
# Settings the managed server writes that a Docker user needs as well (the rest are paths, ports and shutdown waits).
SHARED_SETTINGS = ("server.memory.heap.max_size", "server.memory.pagecache.size", "db.transaction.timeout",
                   "db.memory.transaction.max", "db.tx_log.rotation.retention_policy", "db.tx_log.rotation.size",
                   "db.checkpoint.interval.tx", "server.bolt.connection_keep_alive",
                   "dbms.security.procedures.unrestricted", "dbms.usage_report.enabled")
SUBSTITUTION = re.compile(r"\$\{(\w+)(:?[-?])?([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yml").read_text())


def resolved(value: str) -> str:
    """A compose value with each ``${VAR:-default}`` replaced by its default (what runs when VAR is unset)."""
    return SUBSTITUTION.sub(lambda match: match.group(3) if match.group(2) in (":-", "-") else match.group(0), value)


def setting(variable: str) -> str:
    """The Neo4j setting a NEO4J_* variable of the official image sets (``_`` is ``.``, ``__`` is ``_``)."""
    return variable.removeprefix("NEO4J_").replace("__", "\0").replace("_", ".").replace("\0", "_")


def managed_settings(tmp_path: Path, heap: str) -> dict[str, str]:
    config = server.ServerConfig(home=tmp_path, bolt_port=7687, http_port=7474, listen_address="127.0.0.1",
                                 heap=heap, pagecache=heap)
    (tmp_path / "conf").mkdir()
    server._write_conf(config, artifacts.Artifacts(lib_dir=tmp_path / "lib"))
    lines = (tmp_path / "conf" / "neo4j.conf").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def test_neo4j_and_gds_are_built_at_the_managed_servers_pinned_versions(compose):
    build = compose["services"]["neo4j"]["build"]
    assert build["args"] == {"NEO4J_VERSION": artifacts.NEO4J_VERSION, "GDS_VERSION": artifacts.GDS_VERSION}
    dockerfile = (DOCKER / build["context"] / build["dockerfile"]).read_text()
    assert "FROM neo4j:${NEO4J_VERSION}-community" in dockerfile
    assert re.search(r"^ADD .*neo4j-graph-data-science-\$\{GDS_VERSION\}\.jar /plugins/$", dockerfile, re.M)
    assert "NEO4J_PLUGINS" not in compose["services"]["neo4j"]["environment"]  # it would choose its own GDS


def test_neo4j_gets_the_managed_servers_settings(compose, tmp_path):
    environment = compose["services"]["neo4j"]["environment"]
    configured = {setting(name): resolved(str(value)) for name, value in environment.items()
                  if name.startswith("NEO4J_") and name != "NEO4J_AUTH"}
    managed = managed_settings(tmp_path, configured["server.memory.heap.max_size"])
    assert {name: configured.get(name) for name in SHARED_SETTINGS} == {name: managed[name] for name in SHARED_SETTINGS}


def test_the_explorer_serves_on_all_interfaces_of_its_container_next_to_neo4j(compose):
    explorer = compose["services"]["explorer"]
    assert explorer["command"][:4] == ["atlas", "serve", "--host", "0.0.0.0"]
    assert explorer["environment"]["NEO4J_URI"] == "bolt://neo4j:7687"
    assert explorer["depends_on"]["neo4j"]["condition"] == "service_healthy"
    assert all(port.startswith("127.0.0.1:") for service in compose["services"].values()
               for port in service["ports"])  # published on the host's loopback only


def test_no_password_has_a_default(compose):
    text = (DOCKER / "compose.yml").read_text()
    uses = [match for match in SUBSTITUTION.finditer(text) if "PASSWORD" in match.group(1)]
    assert len(uses) == 2 and all(match.group(2) == ":?" for match in uses)  # unset: compose refuses to start
    values = [str(value) for service in compose["services"].values()
              for name, value in service["environment"].items() if "PASSWORD" in name or name == "NEO4J_AUTH"]
    assert values and all("${NEO4J_PASSWORD:?" in value for value in values)
