"""The explorer under load and faults: pages read while `atlas ingest` loads a run and `atlas ingest --delete`
removes it never show part of a shard; with Neo4j stopped the API answers 503 in one line and recovers after the
restart."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from atlas.db import server
from benchmarks.synthetic import make_synthetic_run
from loaders.online import ingest_run
from loaders.schema import feature_uid
from tests.cli import ATLAS, atlas_env
from tests.conftest import wipe
from tests.explorer import ExplorerServer, strict_loads
from tests.reliability.test_concurrency import Expected

pytestmark = pytest.mark.neo4j
READERS = 4


@pytest.fixture(scope="module")
def loading_run(tmp_path_factory) -> Path:
    """About 14,000 edges in 36 shards."""
    return make_synthetic_run(tmp_path_factory.mktemp("runs") / "loading", scale=0.01, seed=23,
                              run_id="explorer-busy", features_per_shard=128)


def _read(explorer: ExplorerServer, expected: Expected, rng: np.random.Generator, turn: int) -> str:
    """One request of one kind; raise AssertionError when the answer shows part of a shard."""
    source = int(rng.choice(sorted(expected.degree)))
    uid = feature_uid(expected.model, expected.sae, expected.source_layer, source)
    run = expected.run_id
    kind = ("hubs", "edges", "feature", "neighbourhood")[turn % 4]
    url = {"hubs": f"/api/runs/{run}/hubs?top=10",
           "edges": f"/api/features/{uid}/edges?run={run}&limit=1",
           "feature": f"/api/features/{uid}",
           "neighbourhood": f"/api/features/{uid}/neighbourhood?run={run}&hops=1&limit=500"}[kind]
    code, _, body = explorer.get(url)
    if code == 404:  # the run or the feature is not in the graph yet, or not any more
        return "absent"
    assert code == 200, f"{url}: {code} {body[:200]}"
    answer = strict_loads(body)
    if kind == "hubs":
        expected.check_hubs([row for row in answer if row["out_degree"] > 0])  # targets rank after the sources
    elif kind == "edges":
        assert answer["total"] in (0, expected.degree[source]), f"{uid} shows {answer['total']} edges"
    elif kind == "feature":
        for row in answer["runs"]:
            if row["run"] == run:
                assert row["out_degree"] == expected.degree[source], f"{uid} has part of its out-degree"
    else:
        assert len(answer["edges"]) in (0, min(500, expected.degree[source])), f"{uid}: part of its neighbourhood"
    return kind


@pytest.fixture(scope="module")
def pages_during_a_load(graph, small_run, loading_run) -> dict:
    wipe(graph)
    ingest_run(graph, small_run)
    expected = Expected(loading_run)
    stop, errors, mixtures, answers = threading.Event(), [], [], []

    def reader(seed: int) -> None:
        rng = np.random.default_rng(seed)
        turn = seed
        while not stop.is_set():
            try:
                answers.append(_read(explorer, expected, rng, turn))
            except AssertionError as mixture:
                mixtures.append(str(mixture).splitlines()[0])
            except Exception as error:  # noqa: BLE001 - every failure of a reader is what this test counts
                errors.append(repr(error))
                return
            turn += 1

    with ExplorerServer() as explorer:
        threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(READERS)]
        for thread in threads:
            thread.start()
        loader = subprocess.run([*ATLAS, "ingest", str(loading_run), "--batch-size", "500", "--quiet"],
                                capture_output=True, text=True, env=atlas_env(), timeout=600)
        time.sleep(0.5)
        deleter = subprocess.run([*ATLAS, "ingest", "--delete", expected.run_id, "--batch-size", "300", "--quiet"],
                                 capture_output=True, text=True, env=atlas_env(), timeout=600)
        stop.set()
        for thread in threads:
            thread.join(timeout=120)
    return {"loader": loader, "deleter": deleter, "errors": errors, "mixtures": mixtures, "answers": answers}


def test_explorer_reads_during_a_load_and_a_delete_never_show_part_of_a_shard(pages_during_a_load):
    assert pages_during_a_load["loader"].returncode == 0, pages_during_a_load["loader"].stderr
    assert pages_during_a_load["deleter"].returncode == 0, pages_during_a_load["deleter"].stderr
    assert pages_during_a_load["errors"] == [], "\n".join(pages_during_a_load["errors"])
    mixtures = pages_during_a_load["mixtures"]
    assert mixtures == [], f"{len(mixtures)} answers saw part of a shard, e.g. {mixtures[0]}"
    kinds = set(pages_during_a_load["answers"])
    assert {"hubs", "edges", "feature", "neighbourhood"} <= kinds, f"readers only saw {kinds}"


@pytest.mark.slow
def test_neo4j_down_is_a_503_line_and_the_explorer_recovers_after_the_restart(graph, small_run):
    if not server.running_pid(server.ServerConfig.from_env()):
        pytest.skip("needs the managed server (it is stopped and started again)")
    wipe(graph)
    ingest_run(graph, small_run)
    with ExplorerServer() as explorer:
        assert [run["id"] for run in explorer.json("/api/runs")] == ["reliability-small"]
        server.stop()
        try:
            body = explorer.json("/api/runs", status=503)
            assert list(body) == ["error"] and "cannot reach Neo4j" in body["error"] and "\n" not in body["error"]
            code, content_type, page = explorer.get("/")
            assert code == 503 and content_type.startswith("text/html") and "cannot reach Neo4j" in page
        finally:
            server.start(progress=lambda message: None)
        assert [run["id"] for run in explorer.json("/api/runs")] == ["reliability-small"]
