"""Fixtures of the reliability tests: synthetic runs on disk and helpers that look at the graph from outside."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from atlas.cli import cli
from atlas.db.connection import Graph
from benchmarks.synthetic import make_synthetic_run
from loaders.online import ingest_run, run_state
from tests.conftest import wipe
from tests.reliability.checksum import graph_checksum


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """A run of about 1,400 edges in 7 shards (already in the graph when another run is killed)."""
    return make_synthetic_run(tmp_path_factory.mktemp("runs") / "small", scale=0.001, seed=11,
                              run_id="reliability-small")


@pytest.fixture(scope="session")
def crash_run(tmp_path_factory) -> Path:
    """A run of about 4,200 edges in 12 shards of 100-800 edges: the one whose load is killed."""
    return make_synthetic_run(tmp_path_factory.mktemp("runs") / "crash", scale=0.003, seed=12,
                              run_id="reliability-crash", features_per_shard=384)


@pytest.fixture(scope="module")
def loaded_graph(graph, small_run):
    """The test database holding one loaded run (the small run), and its checksum."""
    wipe(graph)
    ingest_run(graph, small_run)
    return graph, graph_checksum(graph)


def affects_count(graph: Graph) -> int:
    """All AFFECTS edges in the graph (answered from the count store, so cheap enough to poll)."""
    return graph.read("MATCH ()-[edge:AFFECTS]->() RETURN count(edge) AS edges")[0]["edges"]


def loaded_shards(graph: Graph, run_id: str) -> list[str] | None:
    """The shards the Run node lists as loaded, or None while the run has no Run node."""
    state = run_state(graph, run_id)
    return None if state is None else list(state.get("shards") or [])


@pytest.fixture(scope="session")
def tiny_trace_inputs(tiny_inputs) -> Path:
    """The tiny inputs (tests/conftest.py) with a planned run ``plan`` (source layer 1)."""
    result = CliRunner().invoke(cli, ["trace", "plan", "--model", str(tiny_inputs / "model"), "--saes",
                                      str(tiny_inputs / "saes"), "--cells", str(tiny_inputs / "cells"),
                                      "--source-layer", "1", "--features-per-shard", "64", "--out",
                                      str(tiny_inputs / "plan"), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return tiny_inputs
