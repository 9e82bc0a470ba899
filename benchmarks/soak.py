"""Soak: repeated ingest / kill -9 / resume / delete cycles on the managed Neo4j while readers query, bounded in time.

Every cycle picks a synthetic run and an operation: load it with `atlas ingest` as a subprocess and SIGKILL it at
a random edge count (then resume), load it uninterrupted, or delete it (sometimes killing the deletion, then
rerunning it). After each operation the run's edges in the graph are compared, by a content digest, with the
digest of an uninterrupted load measured at the start; a deleted run must have no edge and no Run node. Reader
threads run hub, neighbourhood and per-shard count queries the whole time; their errors and every answer that saw
part of a shard (the shard visibility fence of loaders/online.py must make that zero, also during killed loads and
batched deletions) are counted. Every operation and every inconsistency is printed; the exit status is 1 when
there was any inconsistency, reader error or partially visible shard::

    ATLAS_HOME=... ATLAS_BOLT_PORT=... python benchmarks/soak.py --minutes 5 --readers 4
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fault helpers live in tests/reliability

from atlas.db.connection import Graph, connect  # noqa: E402
from benchmarks.synthetic import make_synthetic_run  # noqa: E402
from loaders.online import delete_run, ingest_run, run_state, shard_marks  # noqa: E402
from loaders.schema import apply_schema  # noqa: E402
from tests.conftest import wipe  # noqa: E402
from tests.reliability.processes import kill_when, run_atlas  # noqa: E402
from tests.reliability.test_concurrency import Expected, _reader  # noqa: E402

RUN_EDGES = """
MATCH (source:Feature)-[edge:AFFECTS]->(target:Feature)
WHERE edge.run = $run
RETURN source.uid AS source, target.uid AS target, properties(edge) AS properties
"""
BATCH = 500  # shards of these runs span several transactions; the fence must still show each shard whole
EDGE_COUNT = "MATCH ()-[edge:AFFECTS]->() WHERE edge.run = $run RETURN count(edge) AS edges"


def run_digest(graph: Graph, run_id: str) -> tuple[int, str]:
    """Edge count and SHA-256 of one run's edges (endpoints and every property), order-independent."""
    rows = graph.read(RUN_EDGES, run=run_id)
    lines = sorted(json.dumps([row["source"], row["target"], row["properties"]], sort_keys=True) for row in rows)
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


class Soak:
    """The state of a soak: runs, their reference digests, which are loaded, counters and inconsistencies."""

    def __init__(self, graph: Graph, runs: list[Path], seed: int):
        self.graph, self.runs, self.rng = graph, runs, random.Random(seed)
        self.ids = {run: json.loads((run / "manifest.json").read_text())["run_id"] for run in runs}
        self.reference: dict[str, tuple[int, str]] = {}
        self.loaded: set[Path] = set()
        self.counts = {"cycles": 0, "loads": 0, "killed loads": 0, "resumes": 0, "deletes": 0, "killed deletes": 0,
                       "checks": 0}
        self.inconsistencies: list[str] = []

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    def measure_references(self) -> None:
        for run in self.runs:
            wipe(self.graph)
            ingest_run(self.graph, run)
            self.reference[self.ids[run]] = run_digest(self.graph, self.ids[run])
            self.log(f"reference {self.ids[run]}: {self.reference[self.ids[run]][0]} edges")
        wipe(self.graph)

    def check(self, run: Path) -> None:
        run_id = self.ids[run]
        self.counts["checks"] += 1
        if run in self.loaded:
            seen = run_digest(self.graph, run_id)
            state = run_state(self.graph, run_id) or {}
            if seen != self.reference[run_id] or state.get("status") != "loaded" or shard_marks(self.graph, run_id):
                self.inconsistencies.append(f"{run_id}: {seen[0]} edges, status {state.get('status')}, digest "
                                            f"{'equal' if seen == self.reference[run_id] else 'DIFFERENT'}")
        elif self.edges(run_id) or run_state(self.graph, run_id) is not None:
            self.inconsistencies.append(f"{run_id}: deleted but edges or Run node remain")

    def edges(self, run_id: str) -> int:
        return self.graph.read(EDGE_COUNT, run=run_id)[0]["edges"]

    def load(self, run: Path, kill: bool) -> None:
        run_id, total = self.ids[run], self.reference[self.ids[run]][0]
        self.counts["loads"] += 1
        if kill:
            target = self.rng.randint(1, max(1, total - 1))
            killed = kill_when(["ingest", run, "--batch-size", BATCH, "--quiet"],
                               lambda _: self.edges(run_id) >= target, poll=0.01).killed
            self.counts["killed loads"] += killed
            self.log(f"load {run_id}: {'killed' if killed else 'finished before'} at >= {target} of {total} edges")
            report = ingest_run(self.graph, run, batch_size=BATCH)
            self.counts["resumes"] += 1
            self.log(f"  resume: {report.edges_written} edges written, recovered shards {report.recovered_shards}")
        else:
            result = run_atlas("ingest", run, "--batch-size", BATCH, "--quiet")
            self.log(f"load {run_id}: exit {result.returncode}")
            if result.returncode:
                self.inconsistencies.append(f"{run_id}: load failed: {result.stderr.strip()[-200:]}")
        self.loaded.add(run)
        self.check(run)

    def delete(self, run: Path, kill: bool) -> None:
        run_id, total = self.ids[run], self.reference[self.ids[run]][0]
        self.counts["deletes"] += 1
        if kill:
            killed = kill_when(["ingest", "--delete", run_id, "--batch-size", 200],
                               lambda _: self.edges(run_id) < total, poll=0.01).killed
            self.counts["killed deletes"] += killed
            self.log(f"delete {run_id}: {'killed mid-way at ' + str(self.edges(run_id)) if killed else 'finished'}")
        if run_state(self.graph, run_id) is not None or self.edges(run_id):
            report = delete_run(self.graph, run_id, batch_size=200)
            self.log(f"delete {run_id}: {report.edges_deleted} edges removed")
        self.loaded.discard(run)
        self.check(run)

    def cycle(self) -> None:
        self.counts["cycles"] += 1
        run = self.rng.choice(self.runs)
        if run in self.loaded:
            self.delete(run, kill=self.rng.random() < 0.5)
        else:
            self.load(run, kill=self.rng.random() < 0.75)


def main() -> None:
    """Run the soak for --minutes and print operations, counts and inconsistencies."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.003, help="size of each synthetic run (1 = reference)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, connect() as graph:
        apply_schema(graph)
        runs = [make_synthetic_run(Path(scratch) / f"run{index}", scale=args.scale, seed=100 + index,
                                   run_id=f"soak-{index}", source_layer=5 + index,
                                   downstream_layers=(6 + index, 11 + index, 17 + index), features_per_shard=384)
                for index in range(args.runs)]
        soak = Soak(graph, runs, args.seed)
        soak.measure_references()
        stop, errors, mixtures = threading.Event(), [], []
        answers: list[list] = [[] for _ in range(args.readers)]
        readers = [threading.Thread(target=_reader, args=(graph, Expected(runs[index % len(runs)]), stop, index,
                                                          answers[index], errors, mixtures), daemon=True)
                   for index in range(args.readers)]
        started = time.monotonic()
        for reader in readers:
            reader.start()
        while time.monotonic() - started < args.minutes * 60:
            soak.cycle()
        stop.set()
        for reader in readers:
            reader.join(timeout=60)
        seconds = time.monotonic() - started
        print(f"\nsoak: {seconds / 60:.1f} min, " + ", ".join(f"{value} {key}" for key, value in soak.counts.items()))
        print(f"readers: {args.readers}, {sum(map(len, answers))} answers, {len(errors)} errors, "
              f"{len(mixtures)} answers saw part of a shard")
        for line in errors[:5] + mixtures[:5]:
            print("  reader:", line)
        print(f"inconsistencies: {len(soak.inconsistencies)}")
        for line in soak.inconsistencies:
            print("  ", line)
        if soak.inconsistencies or errors or mixtures:
            sys.exit(1)


if __name__ == "__main__":
    main()
