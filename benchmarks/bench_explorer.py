"""Explorer latency on the reference-shaped synthetic run: feature page, feature API, first edge page and the 2-hop
neighbourhood (pruned to 150 edges), for the top hub (largest out-degree) and a median feature, with 1 and with 8
concurrent clients over HTTP (`atlas serve` in its own process), next to the same library calls through the Python
driver directly (no HTTP), all in the same run.

Setup (not timed): a throwaway managed Neo4j under ``--home`` (never your atlas: the offline import replaces its
database), kept between runs of the benchmark and stopped at the end; a synthetic run of the reference study's
shape (1,393,850 edges at scale 1), written once and loaded with the offline import (``neo4j-admin database
import``) unless that run is already in the graph; then annotations and top genes on the source features. The first
request of a run counts its degrees once (hub ranks), which is printed as the cold cost.

Targets on this machine: feature API p95 <= 150 ms, neighbourhood p95 <= 500 ms, 8 clients with 0 errors.

    ATLAS_NEO4J_HEAP=2g ATLAS_NEO4J_PAGECACHE=2g .venv/bin/python benchmarks/bench_explorer.py            # full scale
    .venv/bin/python benchmarks/bench_explorer.py --baseline main   # + main's neighbourhood statement, same run
    .venv/bin/python benchmarks/bench_explorer.py --scale 0.05 --calls 20                                  # quick
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import numpy as np

import queries
from atlas.analysis import browse
from atlas.db import server
from atlas.db.connection import Graph, connect
from benchmarks.bench_analysis import load_edges, source_annotations, write_annotations
from benchmarks.synthetic import add_run_arguments, ensure_synthetic_run
from benchmarks.throwaway import free_port, use_throwaway_instance
from loaders.offline import bulk_import
from loaders.runs import validate_run

CLIENTS = (1, 8)
HOPS, NEIGHBOURHOOD = 2, 150
FIRST_PAGE = browse.EdgeFilter(limit=50)


def ensure_imported(graph: Graph, run_dir: Path, scale: float, seed: int) -> str:
    """Write the synthetic run (once) and offline-import it unless the graph already holds exactly this run."""
    ensure_synthetic_run(run_dir, scale, seed)
    run = validate_run(run_dir)
    loaded = graph.read("MATCH (r:Run {id: $id}) RETURN r.edge_count AS edges, size(r.visible) AS visible",
                        id=run.run_id)
    if loaded and loaded[0]["edges"] == run.edge_count and loaded[0]["visible"] == len(run.shards):
        print(f"setup: run {run.run_id} already in the graph")
        return run.run_id
    started = time.perf_counter()
    bulk_import([run], force=True)
    print(f"setup: offline import of {run.edge_count:,} edges in {time.perf_counter() - started:.1f} s")
    return run.run_id


class Explorer:
    """`atlas serve` as a subprocess on a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-c", "from atlas.cli import main; main()", "serve",
                                         "--port", str(self.port)], env=os.environ.copy(),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"atlas serve exited: {self.process.stderr.read().decode()}")
            try:
                urllib.request.urlopen(self.url + "/openapi.json", timeout=5).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("atlas serve did not answer in 120 s")

    def get(self, path: str) -> None:
        """GET a path; raise unless it answers 200."""
        with urllib.request.urlopen(self.url + path, timeout=60) as response:
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{path}: HTTP {response.status}")

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def measure(call: Callable[[], object], calls: int, clients: int) -> tuple[np.ndarray, int]:
    """Milliseconds of ``calls`` calls per client with ``clients`` threads at once (after one warm-up), and errors."""
    call()
    values: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(calls):
            started = time.perf_counter()
            try:
                call()
            except (OSError, RuntimeError, urllib.error.HTTPError) as error:
                with lock:
                    errors.append(repr(error))
                continue
            with lock:
                values.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return np.array(values), len(errors)


def pick_features(graph: Graph, run_id: str) -> dict[str, str]:
    """The top hub (largest out-degree) and a median feature (the median out-degree among sources)."""
    degrees = browse.DEGREES.get(graph, run_id, browse.visible_keys(graph, [run_id])[run_id])
    sources = [(int(out), str(uid)) for uid, out in zip(degrees.uid, degrees.out_degree, strict=True) if out > 0]
    sources.sort()
    return {"top hub": sources[-1][1], "median feature": sources[len(sources) // 2][1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, None, "where the synthetic run is written (default /tmp/atlas-bench-explorer/scale-S)")
    parser.add_argument("--calls", type=int, default=40, help="calls per client and measurement")
    parser.add_argument("--baseline", metavar="REV",
                        help="also time the neighbourhood statement of this git revision through the driver, "
                             "interleaved with the current one (the baseline of a change)")
    parser.add_argument("--home", type=Path, default=Path("/tmp/atlas-bench-explorer/instance"),
                        help="ATLAS_HOME of the benchmark's own Neo4j (its database is replaced)")
    args = parser.parse_args()
    run_dir = args.run_dir or Path(f"/tmp/atlas-bench-explorer/scale-{args.scale:g}")
    use_throwaway_instance(args.home)
    config = server.start()
    try:
        benchmark(args, run_dir)
    finally:
        server.stop(config)


def benchmark(args: argparse.Namespace, run_dir: Path) -> None:
    """Set up the run, start `atlas serve` and print every measurement and the targets."""
    with connect() as graph:
        version, _, gds_version = graph.server_versions()
        print(f"Neo4j {version}, GDS {gds_version}, scale {args.scale}, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f}")
    with connect() as graph:  # the offline import restarts the server: a fresh connection after it
        run_id = ensure_imported(graph, run_dir, args.scale, args.seed)
    with connect() as graph:
        edges = load_edges(run_dir)
        write_annotations(graph, source_annotations(edges, args.seed))
        started = time.perf_counter()
        features = pick_features(graph, run_id)
        print(f"run {run_id}: {len(edges):,} edges; degrees of the run counted (cold, once per visible-shard set) "
              f"in {time.perf_counter() - started:.2f} s")
        explorer = Explorer()
        try:
            started = time.perf_counter()
            explorer.get(f"/api/features/{quote(features['top hub'], safe='/')}")
            print(f"first feature request to a fresh `atlas serve` (counts the degrees): "
                  f"{(time.perf_counter() - started) * 1000:.0f} ms\n")
            results = run_measurements(graph, explorer, run_id, features, args.calls)
            if args.baseline:
                compare_statements(graph, features, args.baseline, args.calls)
        finally:
            explorer.close()
    report_targets(results)
    print(f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (the machine is shared)")


def run_measurements(graph: Graph, explorer: Explorer, run_id: str, features: dict[str, str], calls: int
                     ) -> dict[tuple[str, str, str, int], tuple[np.ndarray, int]]:
    """Every (feature, endpoint, path, clients) measurement, printed as it completes."""
    results = {}
    for name, uid in features.items():
        path = quote(uid, safe="/")
        endpoints = {
            "feature page (HTML)": (f"/features/{path}", None),
            "feature API": (f"/api/features/{path}", lambda uid=uid: browse.feature_document(graph, uid)),
            "edges, first page": (f"/api/features/{path}/edges?limit=50",
                                  lambda uid=uid: browse.feature_edges(graph, uid, FIRST_PAGE)),
            f"neighbourhood ({HOPS} hops, {NEIGHBOURHOOD})": (
                f"/api/features/{path}/neighbourhood?hops={HOPS}&limit={NEIGHBOURHOOD}",
                lambda uid=uid: browse.neighbourhood(graph, uid, None, HOPS, NEIGHBOURHOOD)),
        }
        out_degree = browse.feature_document(graph, uid)["runs"][0]["out_degree"]
        print(f"{name} {uid} (out-degree {out_degree}), {calls} calls per client:")
        for endpoint, (url, direct) in endpoints.items():
            for clients in CLIENTS:
                values, errors = measure(lambda url=url: explorer.get(url), calls, clients)
                results[(name, endpoint, "http", clients)] = (values, errors)
                line = (f"    {endpoint:<32} HTTP   {clients} client{'s' if clients > 1 else ' '} "
                        f"p50 {np.percentile(values, 50):7.1f} ms  p95 {np.percentile(values, 95):7.1f} ms  "
                        f"errors {errors}")
                if direct is not None and clients == 1:
                    driver, driver_errors = measure(direct, calls, 1)
                    results[(name, endpoint, "driver", 1)] = (driver, driver_errors)
                    line += (f"   | driver directly p50 {np.percentile(driver, 50):7.1f} ms  p95 "
                             f"{np.percentile(driver, 95):7.1f} ms  (HTTP/driver p50 "
                             f"{np.percentile(values, 50) / np.percentile(driver, 50):.2f}x)")
                print(line, flush=True)
    return results


def compare_statements(graph: Graph, features: dict[str, str], revision: str, calls: int) -> None:
    """Milliseconds of the neighbourhood statement of ``revision`` and of the current one through the driver, calls
    interleaved so that both see the same load."""
    name = "queries/internal/explorer_neighbourhood.cypher"
    baseline = subprocess.run(["git", "show", f"{revision}:{name}"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parent.parent).stdout
    statements = {revision: baseline, "current": queries.internal("explorer_neighbourhood").text}
    visible = [key for keys in browse.visible_keys(graph).values() for key in keys]
    print(f"\nneighbourhood statement alone ({HOPS} hops, {NEIGHBOURHOOD}), driver, {revision} vs current, "
          f"{calls} interleaved calls each:")
    for feature, uid in features.items():
        times: dict[str, list[float]] = {label: [] for label in statements}
        kept: dict[str, int] = {}
        for _ in range(calls + 1):  # the first round warms up
            for label, text in statements.items():
                started = time.perf_counter()
                kept[label] = len(graph.read(text, uid=uid, visible=visible, hops=HOPS, limit=NEIGHBOURHOOD))
                times[label].append((time.perf_counter() - started) * 1000)
        line = "   ".join(f"{label} p50 {np.percentile(values[1:], 50):6.1f} ms p95 "
                           f"{np.percentile(values[1:], 95):6.1f} ms, {kept[label]} edges kept"
                           for label, values in times.items())
        ratio = np.percentile(times[revision][1:], 50) / np.percentile(times["current"][1:], 50)
        print(f"    {feature:<16} {line}   ({revision}/current p50 {ratio:.2f}x)")


def report_targets(results: dict[tuple[str, str, str, int], tuple[np.ndarray, int]]) -> None:
    """Print whether the targets were met (over both features)."""
    def worst_p95(endpoint: str, clients: int) -> float:
        return max(np.percentile(values, 95) for (_, name, path, count), (values, _) in results.items()
                   if name.startswith(endpoint) and path == "http" and count == clients)

    errors = sum(count for (_, _, path, clients), (_, count) in results.items() if path == "http" and clients == 8)
    targets = {f"feature API p95 <= 150 ms (1 client: {worst_p95('feature API', 1):.0f} ms)":
               worst_p95("feature API", 1) <= 150,
               f"neighbourhood p95 <= 500 ms (1 client: {worst_p95('neighbourhood', 1):.0f} ms)":
               worst_p95("neighbourhood", 1) <= 500,
               f"8 clients 0 errors ({errors})": errors == 0}
    print("\ntargets: " + "; ".join(f"{name}: {'met' if met else 'MISSED'}" for name, met in targets.items()))


if __name__ == "__main__":
    main()
