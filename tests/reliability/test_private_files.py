"""Private by default: the first start's password on no command line, owner-only files, credentials in a URI never
echoed."""

from __future__ import annotations

import secrets
import socket
import stat
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from neo4j import GraphDatabase

from atlas.db import server
from atlas.db.connection import ConnectionSettings, connect, redact_uri
from atlas.db.server import ServerConfig
from atlas.errors import AtlasError
from tests.reliability.processes import error_lines
from tests.reliability.test_bad_inputs import run_main


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CommandLineWatch:
    """Polls every process's command line (what any local user can read) while a block runs."""

    def __init__(self, secret: str, marker: str):
        self.secret, self.marker = secret.encode(), marker.encode()
        self.leaks: list[str] = []
        self.marked = 0  # polls that saw a process whose command line holds ``marker``
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    text = cmdline.read_bytes()
                except OSError:
                    continue
                if self.secret in text:
                    self.leaks.append(str(cmdline))
                self.marked += self.marker in text
            self._stop.wait(0.01)

    def __enter__(self) -> CommandLineWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def _not_private(home: Path) -> list[str]:
    paths = [home, *home.rglob("*")]
    return [f"{path} {stat.filemode(path.lstat().st_mode)}" for path in paths
            if not path.is_symlink() and path.lstat().st_mode & 0o077]


@pytest.mark.neo4j
@pytest.mark.slow
def test_a_first_start_never_puts_the_password_on_a_command_line_and_leaves_every_file_owner_only(
        tmp_path, monkeypatch):
    # A generated password beginning with '-' was once read by neo4j-admin as an option (one first start in 64).
    password = "-" + secrets.token_urlsafe(24)
    monkeypatch.setattr(server.secrets, "token_urlsafe", lambda _: password)
    monkeypatch.delenv("NEO4J_PASSWORD", raising=False)
    monkeypatch.setenv("ATLAS_HOME", str(tmp_path / "home"))
    config = replace(ServerConfig.from_env(), bolt_port=_free_port(), http_port=_free_port(), heap="384m",
                     pagecache="64m")
    try:
        with CommandLineWatch(password, f"@{config.home}") as watch:
            server.start(config, progress=lambda *_: None)
        assert watch.marked > 0, "the watch never saw neo4j-admin setting the password"
        assert watch.leaks == []
        with GraphDatabase.driver(config.bolt_uri, auth=("neo4j", password)) as driver:
            assert driver.execute_query("RETURN 1 AS one").records[0]["one"] == 1
        assert config.password_file.read_text().strip() == password
        assert _not_private(tmp_path / "home") == []
    finally:
        server.stop(config)


def test_an_existing_instance_is_made_owner_only(tmp_path):
    home = tmp_path / "home"
    (home / "neo4j" / "data").mkdir(parents=True)
    (home / "neo4j" / "data" / "store").write_text("x")
    (home / "neo4j" / "data" / "store").chmod(0o644)
    home.chmod(0o755)
    server.make_private(home)
    assert _not_private(home) == []


def test_uri_credentials_are_redacted():
    assert redact_uri("neo4j+s://neo4j:s3cret@db.example:7687/x?a=1") == "neo4j+s://***@db.example:7687/x?a=1"
    assert redact_uri("bolt://localhost:7687") == "bolt://localhost:7687"


def test_a_neo4j_uri_with_credentials_is_refused_without_echoing_them(monkeypatch, capsys):
    monkeypatch.setenv("NEO4J_URI", "bolt://neo4j:s3cret-in-uri@127.0.0.1:1")
    monkeypatch.setenv("NEO4J_PASSWORD", "another-secret")
    code, stderr = run_main(["cypher", "RETURN 1"], capsys, monkeypatch)
    lines = error_lines(stderr)
    assert code != 0 and len(lines) == 1, stderr
    assert "bolt://***@127.0.0.1:1" in lines[0] and "s3cret-in-uri" not in stderr


def test_a_driver_refusal_of_such_a_uri_does_not_echo_it():
    settings = ConnectionSettings("http://neo4j:s3cret-in-uri@localhost:1", "neo4j", "pw-secret", "neo4j", False)
    with pytest.raises(AtlasError) as refusal:
        connect(settings)
    assert "s3cret-in-uri" not in str(refusal.value) and "pw-secret" not in str(refusal.value)
