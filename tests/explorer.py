"""The explorer run for real in tests: uvicorn in a thread on a free port, and a strict JSON client."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import numpy as np
import uvicorn

from atlas.db.connection import Graph
from atlas.explorer.app import create_app
from tests.graphs import ToyRun, chained_runs, heavy_tailed_run, uid


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ExplorerServer:
    """`atlas serve`'s application in a background thread (context manager)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ExplorerServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the explorer did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def get(self, path: str) -> tuple[int, str, str]:
        """Status, content type and body of a GET."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as response:
                return response.status, response.headers.get("content-type", ""), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("content-type", ""), error.read().decode()

    def json(self, path: str, status: int = 200) -> Any:
        """The strictly parsed JSON body of a GET, checking its status."""
        code, content_type, body = self.get(path)
        assert code == status, f"{path}: {code} {body[:300]}"
        assert content_type.startswith("application/json"), content_type
        return strict_loads(body)


def _refuse(constant: str) -> None:
    raise ValueError(f"non-strict JSON constant {constant}")


def strict_loads(text: str) -> Any:
    """json.loads that refuses NaN, Infinity and -Infinity."""
    return json.loads(text, parse_constant=_refuse)


def build_explorer_atlas(graph: Graph) -> tuple[ToyRun, str]:
    """An empty graph given a heavy-tailed run ``toy``, two chained runs, and on the hub of ``toy`` (returned with
    the run) a steering result, an interaction, calibrated out-edges (perm_p = |d| / 100, perm_q = |d| / 50, the
    run marked calibrated) and one edge whose std is NaN and whose q is missing."""
    from tests.conftest import wipe

    wipe(graph)
    rng = np.random.default_rng(7)
    run = heavy_tailed_run(graph, "toy", rng)
    chained_runs(graph, rng)
    hub = run.edges.groupby("source").size().idxmax()
    graph.write("MATCH (f:Feature {uid: $uid}) CREATE (s:Steering {id: 'steer-1', run: 'steer', alpha: 2.0, "
                "mean_ds: 0.25, fraction_positive: 0.8, n_cells: 12, top_up: ['CD3E'], top_down: []})-[:STEERS]->(f) "
                "CREATE (i:Interaction {id: 'set-1', run: 'ablate', selection: 'random', order: 2, "
                "members: [$uid, $other], n_targets: 4, median_redundancy: 0.6, fraction_subadditive: 0.5, "
                "fraction_superadditive: 0.25, mean_abs_interaction: 0.1})-[:HAS_MEMBER]->(f)",
                uid=hub, other=uid(5, 1))
    graph.write("MATCH (:Feature {uid: $uid})-[e:AFFECTS]->() SET e.perm_p = abs(e.d) / 100, e.perm_q = abs(e.d) / 50",
                uid=hub)
    graph.write("MATCH (r:Run {id: $run}) SET r.calibration_n_perm = 100", run=run.run)
    graph.write("MATCH (:Feature {uid: $uid})-[e:AFFECTS]->() WITH e ORDER BY abs(e.d) DESC LIMIT 1 "
                "SET e.std = $nan, e.q = null", uid=hub, nan=float("nan"))
    return run, hub
