"""Fixtures of the reliability tests: synthetic runs on disk and helpers that look at the graph from outside."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from atlas.cli import cli
from atlas.db.connection import Graph
from benchmarks.synthetic import make_synthetic_run
from loaders.online import run_state
from tests.tiny import build_tiny_atlas, save_tiny_bert, save_tiny_cells, tiny_bert, tiny_cells


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


def affects_count(graph: Graph) -> int:
    """All AFFECTS edges in the graph (answered from the count store, so cheap enough to poll)."""
    return graph.read("MATCH ()-[edge:AFFECTS]->() RETURN count(edge) AS edges")[0]["edges"]


def loaded_shards(graph: Graph, run_id: str) -> list[str] | None:
    """The shards the Run node lists as loaded, or None while the run has no Run node."""
    state = run_state(graph, run_id)
    return None if state is None else list(state.get("shards") or [])


@pytest.fixture(scope="session")
def tiny_trace_inputs(tmp_path_factory) -> Path:
    """A tiny model (d=32, 4 layers), SAEs of layers 1-3, 12 tokenized cells and a planned run ``plan``."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("tiny-trace")
    cells = tiny_cells(4, 12)
    save_tiny_bert(root / "model", seed=4)
    build_tiny_atlas(root / "saes", tiny_bert(4), cells, layers=[1, 2, 3], steps=10, seed=4)
    save_tiny_cells(root / "cells", cells)
    result = CliRunner().invoke(cli, ["trace", "plan", "--model", str(root / "model"), "--saes", str(root / "saes"),
                                      "--cells", str(root / "cells"), "--source-layer", "1",
                                      "--features-per-shard", "64", "--out", str(root / "plan"), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return root
