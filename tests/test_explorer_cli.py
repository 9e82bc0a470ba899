"""`atlas serve` as a user runs it: help with examples, one-line errors, localhost by default, the missing-assets
hint, and pages that escape what the graph holds."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
import urllib.request

import pytest

from atlas.explorer import app as explorer_app
from tests.cli import ATLAS
from tests.explorer import ExplorerServer, free_port
from tests.graphs import feature_table, write_features


def test_serve_help_shows_examples_and_the_localhost_default():
    result = subprocess.run([*ATLAS, "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Examples:" in result.stdout and "atlas serve --port" in result.stdout
    assert "127.0.0.1" in result.stdout


def test_serve_against_an_unreachable_server_is_one_line():
    env = {**os.environ, "NEO4J_URI": f"bolt://127.0.0.1:{free_port()}", "NEO4J_PASSWORD": secrets.token_hex(8)}
    result = subprocess.run([*ATLAS, "serve", "--port", str(free_port())], capture_output=True, text=True,
                            env=env, timeout=60)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "cannot reach Neo4j" in result.stderr


def test_missing_graph_assets_are_named_with_the_command_that_installs_them(tmp_path, monkeypatch):
    monkeypatch.setattr(explorer_app, "VENDOR", tmp_path)
    assert "npm ci --prefix atlas/explorer/frontend" in explorer_app.assets_missing()


@pytest.mark.neo4j
def test_serve_binds_localhost_and_answers(graph):
    port = free_port()
    process = subprocess.Popen([*ATLAS, "serve", "--port", str(port)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/runs", timeout=10) as response:
                    assert response.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, process.stderr.read()
                time.sleep(0.2)
        address = socket.gethostbyname(socket.gethostname())
        if not address.startswith("127."):
            with pytest.raises(OSError):
                socket.create_connection((address, port), timeout=5).close()
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert f"http://127.0.0.1:{port}/" in output


@pytest.mark.neo4j
def test_pages_escape_labels_from_the_graph(clean_graph):
    import numpy as np

    features = feature_table(5, 1, np.random.default_rng(0), annotated_rate=0)
    features["label"] = "<script>alert('x')</script>"
    write_features(clean_graph, features)
    with ExplorerServer() as explorer:
        code, _, body = explorer.get(f"/features/{features['uid'][0]}")
        found = explorer.get("/search?q=script")[2]
    assert code == 200 and "&lt;script&gt;" in body
    assert "<script>alert" not in body and "<script>alert" not in found


@pytest.mark.neo4j
def test_serve_on_a_port_in_use_is_one_line(graph):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = subprocess.run([*ATLAS, "serve", "--port", str(taken.getsockname()[1])], capture_output=True,
                                text=True, env=os.environ.copy(), timeout=60)
    assert result.returncode == 1 and result.stderr.strip().count("\n") == 0
    assert "cannot listen on 127.0.0.1" in result.stderr
