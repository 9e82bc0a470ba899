"""Concurrent use: 8 reader threads (each with its own session) run hub and neighbourhood queries while
`atlas ingest` loads a run in another process and then `atlas ingest --delete` removes it. Zero errors, and every
answer matches the state before or after some shard: each shard wholly or not at all.

Neo4j's reads are read-committed: a query that runs while a commit is applied can see part of it (before the fence
existed, readers here counted hubs with part of their edges). The loader's shard visibility fence (loaders/online.py)
makes a shard visible in a transaction after its edges, and the library queries count only visible shards.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from neo4j import READ_ACCESS

import queries
from atlas.db.connection import Graph
from atlas.runformat import read_manifest
from benchmarks.synthetic import make_synthetic_run
from loaders.online import ingest_run
from loaders.schema import feature_uid
from tests.cli import ATLAS, atlas_env
from tests.conftest import wipe

pytestmark = pytest.mark.neo4j
READERS = 8
SHARD_COUNTS = """
CALL () { MATCH (run:Run) UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (source:Feature)-[edge:AFFECTS]->(:Feature)
WHERE edge.run = $run AND edge.shard IN visible
RETURN source.index AS source, count(edge) AS edges
"""


@pytest.fixture(scope="module")
def busy_run(tmp_path_factory) -> Path:
    """About 14,000 edges in 36 shards of at most 1,500 edges: each shard is one transaction at --batch-size 2000."""
    return make_synthetic_run(tmp_path_factory.mktemp("runs") / "busy", scale=0.01, seed=21, run_id="busy",
                              features_per_shard=128)


class Expected:
    """What a reader may see of the run: each shard wholly or not at all."""

    def __init__(self, run_dir: Path):
        manifest = read_manifest(run_dir)
        self.run_id, self.model, self.sae = manifest.run_id, manifest.model, manifest.sae
        self.source_layer = manifest.source_layer
        self.degree: dict[int, int] = {}
        self.shard_of: dict[int, int] = {}
        self.shard_rows = []
        for position, record in enumerate(manifest.shards):
            sources = pq.read_table(run_dir / record.file, columns=["source_feature"]).column(0).to_numpy()
            for source, count in zip(*np.unique(sources, return_counts=True), strict=True):
                self.degree[int(source)] = int(count)
                self.shard_of[int(source)] = position
            self.shard_rows.append(record.rows)

    def check_shard_counts(self, rows: list[dict]) -> int:
        """Raise unless every shard is absent or complete; return how many shards are complete."""
        per_shard = Counter()
        for row in rows:
            per_shard[self.shard_of[row["source"]]] += row["edges"]
        partial = {shard: count for shard, count in per_shard.items() if count != self.shard_rows[shard]}
        assert not partial, f"partially visible shards (shard: edges seen): {partial}"
        return len(per_shard)

    def check_hubs(self, rows: list[dict]) -> None:
        for row in rows:
            index = int(row["uid"].rsplit("/F", 1)[1])
            assert row["out_degree"] == self.degree[index], f"hub {row['uid']} has part of its edges"

    def check_neighbourhood(self, rows: list[dict], source: int) -> None:
        out = sum(row["edges"] for row in rows if row["direction"] == "out")
        assert out in (0, self.degree[source]), f"feature {source} shows {out} of {self.degree[source]} edges"


def _reader(graph: Graph, expected: Expected, stop: threading.Event, seed: int, answers: list, errors: list,
            mixtures: list) -> None:
    rng = np.random.default_rng(seed)
    hubs, neighbourhood = queries.get("hubs").text, queries.get("neighbourhood").text
    sources = sorted(expected.degree)
    with graph.driver.session(database=graph.database, default_access_mode=READ_ACCESS) as session:
        while not stop.is_set():
            try:
                kind = ("shards", "hubs", "neighbourhood")[len(answers) % 3]
                if kind == "shards":
                    rows = session.execute_read(lambda tx: tx.run(SHARD_COUNTS, run=expected.run_id).data())
                    answers.append(("shards", expected.check_shard_counts(rows)))
                elif kind == "hubs":
                    rows = session.execute_read(lambda tx: tx.run(hubs, run=expected.run_id, layers=None,
                                                                  limit=20, max_q=None, q_column="q").data())
                    expected.check_hubs(rows)
                    answers.append(("hubs", len(rows)))
                else:
                    source = int(rng.choice(sources))
                    uid = feature_uid(expected.model, expected.sae, expected.source_layer, source)
                    rows = session.execute_read(lambda tx, uid=uid: tx.run(neighbourhood, uid=uid,
                                                                           run=expected.run_id, per_layer=5).data())
                    expected.check_neighbourhood(rows, source)
                    answers.append(("neighbourhood", len(rows)))
            except AssertionError as mixture:
                mixtures.append(str(mixture).splitlines()[0])
            except Exception as error:  # noqa: BLE001 - every failure of a reader is what this test counts
                errors.append(repr(error))
                return


@pytest.fixture(scope="module")
def concurrent_load(graph, small_run, busy_run) -> dict:
    """Load ``busy_run`` with `atlas ingest`, then delete it, while 8 readers query; what the readers saw."""
    wipe(graph)
    ingest_run(graph, small_run)
    expected = Expected(busy_run)
    stop, errors, mixtures = threading.Event(), [], []
    answers: list[list] = [[] for _ in range(READERS)]
    threads = [threading.Thread(target=_reader, args=(graph, expected, stop, seed, answers[seed], errors, mixtures))
               for seed in range(READERS)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)  # readers see the state before the load, too
    loader = subprocess.run([*ATLAS, "ingest", str(busy_run), "--batch-size", "500", "--quiet"],
                            capture_output=True, text=True, env=atlas_env(), timeout=600)
    time.sleep(0.5)
    deleter = subprocess.run([*ATLAS, "ingest", "--delete", expected.run_id, "--batch-size", "300", "--quiet"],
                             capture_output=True, text=True, env=atlas_env(), timeout=600)
    time.sleep(0.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return {"loader": loader, "deleter": deleter, "errors": errors, "mixtures": mixtures, "answers": answers,
            "shards": len(expected.shard_rows)}


def test_eight_readers_during_an_ingest_and_a_delete_see_no_error(concurrent_load):
    assert concurrent_load["loader"].returncode == 0, concurrent_load["loader"].stderr
    assert concurrent_load["deleter"].returncode == 0, concurrent_load["deleter"].stderr
    assert concurrent_load["errors"] == [], "\n".join(concurrent_load["errors"])
    answers = concurrent_load["answers"]
    assert len(answers) == READERS and all(answers), "every reader answered"
    complete = [count for reader in answers for kind, count in reader if kind == "shards"]
    n_shards = concurrent_load["shards"]
    assert 0 in complete and n_shards in complete  # states before, between and after the load were seen
    assert any(0 < count < n_shards for count in complete), "no reader overlapped the load"


def test_every_answer_shows_each_shard_wholly_or_not_at_all(concurrent_load):
    mixtures = concurrent_load["mixtures"]
    assert mixtures == [], f"{len(mixtures)} answers saw part of a shard, e.g. {mixtures[0]}"
