"""Shared fixtures: the real Neo4j + GDS server (managed, or NEO4J_URI), a clean database per test, and the tiny
model, SAEs and cells on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import queries
from atlas.db import server
from atlas.db.connection import Graph, connect
from loaders.schema import apply_schema
from tests.graphs import ToyRun, chained_runs, heavy_tailed_run
from tests.tiny import build_tiny_inputs


@pytest.fixture(scope="session")
def neo4j_server():
    """Start the managed server for the test session (unless NEO4J_URI points elsewhere); stop it if we started it."""
    started = None
    if not os.environ.get("NEO4J_URI"):
        config = server.ServerConfig.from_env()
        if server.running_pid(config) is None:
            started = server.start(config)
    yield
    if started is not None:
        server.stop(started)


@pytest.fixture(scope="session")
def graph(neo4j_server) -> Graph:
    """A connection to the test database with the schema applied."""
    with connect() as connection:
        apply_schema(connection)
        yield connection


def wipe(graph: Graph) -> None:
    """Remove every GDS projection, node and relationship (the schema stays)."""
    graph.read(queries.internal("drop_all_projections").text)
    graph.autocommit(queries.internal("wipe_relationships").text)
    graph.autocommit(queries.internal("wipe_batch").text)


@pytest.fixture
def clean_graph(graph: Graph) -> Graph:
    """The test database, empty at the start of the test."""
    wipe(graph)
    return graph


@pytest.fixture(scope="session")
def tiny_inputs(tmp_path_factory) -> Path:
    """A directory with ``model/``, ``saes/`` (layers 0-3) and ``cells/`` (12 cells): see :func:`build_tiny_inputs`.
    Shared by the session: tests write their outputs elsewhere."""
    return build_tiny_inputs(tmp_path_factory.mktemp("tiny-inputs"))


@pytest.fixture
def toy(clean_graph) -> ToyRun:
    """An empty graph given one heavy-tailed run ``toy`` (a source layer into two downstream layers)."""
    return heavy_tailed_run(clean_graph, "toy", np.random.default_rng(11))


@pytest.fixture
def chain(clean_graph) -> list[ToyRun]:
    """An empty graph given two chained runs (chain-a L0 -> L1, chain-b L1 -> L2), a full-depth atlas in small."""
    return chained_runs(clean_graph, np.random.default_rng(5))
