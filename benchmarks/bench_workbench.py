"""Benchmark the analysts' workbench on the reference-sized synthetic run, next to igraph on the same edges.

Setup (not timed): the synthetic run of the reference study's shape (1,393,850 edges at scale 1, from
``benchmarks/synthetic.py``) loaded with the online loader (shared with ``bench_analysis.py``).

Timed, in one process and one run:
  1. ``atlas gds pageRank --run R --json`` end to end as a user runs it (a fresh process: start-up, connection,
     memory checks, fenced projection through the graphdatascience client, PageRank, join to uids, JSON, drop),
     and the same call in-process (``run_algorithm``);
  2. Leiden modules (``atlas.analysis.modules.modules``: |d|-weighted undirected projection, Leiden, join,
     annotation and term enrichment) and the bare Leiden stream on the projection;
  3. igraph: graph build from the edge arrays plus PageRank, and build of the undirected |d|-weighted graph plus
     Leiden (modularity), the fastest thing an analyst would reach for; the ratios database / igraph;
  4. the projection alone through the client (what every analysis now uses) next to the same fenced Cypher
     statement sent through the driver directly, alternated, to show what the client path costs.

Run with your own instance, e.g.::

    ATLAS_HOME=/tmp/atlas-bench ATLAS_BOLT_PORT=7702 ATLAS_HTTP_PORT=7402 ATLAS_NEO4J_HEAP=2g \
    ATLAS_NEO4J_PAGECACHE=2g .venv/bin/python benchmarks/bench_workbench.py --scale 1
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import igraph
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import queries  # noqa: E402
from atlas.analysis.algorithms import run_algorithm  # noqa: E402
from atlas.analysis.modules import modules  # noqa: E402
from atlas.analysis.projection import drop, layers_by_node_id, projected  # noqa: E402
from atlas.analysis.scope import resolve_scope  # noqa: E402
from atlas.db.connection import connect  # noqa: E402
from benchmarks.bench_analysis import ANALYSIS_RUN_DIR, ensure_loaded, load_edges  # noqa: E402
from benchmarks.synthetic import add_run_arguments  # noqa: E402


def seconds(work) -> tuple[float, object]:
    """Wall time of one call and its result."""
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def igraph_graph(source: np.ndarray, target: np.ndarray, directed: bool) -> tuple[igraph.Graph, np.ndarray]:
    """igraph's graph of the edges (node keys factorised to dense ids, edges as a list of pairs: its fastest input
    here) and the node key of each vertex."""
    dense, keys = pd.factorize(np.concatenate([source, target]))
    edges = list(zip(dense[:len(source)].tolist(), dense[len(source):].tolist(), strict=True))
    return igraph.Graph(n=len(keys), edges=edges, directed=directed), keys


def igraph_pagerank(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """igraph build + PageRank; seconds, node keys, scores."""
    started = time.perf_counter()
    network, keys = igraph_graph(source, target, directed=True)
    scores = np.asarray(network.pagerank(damping=0.85))
    return time.perf_counter() - started, keys, scores


def igraph_leiden(source: np.ndarray, target: np.ndarray, weight: np.ndarray) -> tuple[float, int]:
    """igraph build of the undirected |d|-weighted graph + Leiden (modularity, igraph's defaults otherwise)."""
    started = time.perf_counter()
    network, _ = igraph_graph(source, target, directed=False)
    partition = network.community_leiden(objective_function="modularity", weights=weight)
    return time.perf_counter() - started, len(partition)


def projection_seconds(graph, scope, send) -> float:
    """Seconds of the fenced projection statement sent by ``send`` (the client's or the driver's), then dropped."""
    name = scope.projection_name()
    layers = layers_by_node_id(graph)
    elapsed, _ = seconds(lambda: send(queries.internal("project_scope").text, graph_name=name,
                                      weighted_undirected=False, layers_by_node_id=layers, **scope.parameters()))
    drop(graph, name)
    return elapsed


def atlas_command(*arguments: str) -> float:
    """Seconds of one `atlas ...` run in a fresh process (stdout discarded, failure raised)."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "from atlas.cli import main; main()", *arguments], check=True,
                   stdout=subprocess.DEVNULL, env=os.environ.copy())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, ANALYSIS_RUN_DIR)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each step (the median is printed)")
    args = parser.parse_args()
    run_dir = args.run_dir if args.scale == 1 else args.run_dir.with_name(f"{args.run_dir.name}-scale{args.scale:g}")

    with connect() as graph:
        run_id = ensure_loaded(graph, run_dir, args.scale, args.seed)
        edges = load_edges(run_dir)
        weight = np.abs(pq.read_table(sorted(run_dir.glob("edges-*.parquet")), columns=["d"]).column("d").to_numpy())
        scope = resolve_scope(graph, [run_id])
        print(f"scope {run_id}: {len(edges):,} edges, {edges['source'].nunique():,} sources; repeats {args.repeats}")
        # The client's start-up (a server version check) is paid once per connection, not per analysis.
        client_start, _ = seconds(lambda: graph.gds)
        print(f"graphdatascience client start-up: {client_start:.2f} s")

        rows = []
        for _ in range(args.repeats):
            end_to_end = atlas_command("gds", "pageRank", "--run", run_id, "--json")
            in_process, result = seconds(lambda: run_algorithm(graph, scope, "pageRank"))
            leiden_modules, module_result = seconds(lambda: modules(graph, scope))
            with projected(graph, scope, weighted_undirected=True) as projection:
                bare_leiden, _ = seconds(lambda projection=projection: graph.gds.leiden.stream(
                    projection.gds_graph, relationship_weight_property="weight", random_seed=42, concurrency=1))
            igraph_pr, keys, scores = igraph_pagerank(edges["source_key"].to_numpy(), edges["target_key"].to_numpy())
            igraph_modules, igraph_count = igraph_leiden(edges["source_key"].to_numpy(),
                                                         edges["target_key"].to_numpy(), weight)
            client_projection = projection_seconds(graph, scope, graph.gds.graph.project.cypher)
            driver_projection = projection_seconds(graph, scope, graph.read)
            rows.append({"gds_pagerank_end_to_end": end_to_end, "gds_pagerank_in_process": in_process,
                         "igraph_build_pagerank": igraph_pr, "modules_leiden": leiden_modules,
                         "leiden_stream_only": bare_leiden, "igraph_build_leiden": igraph_modules,
                         "projection_client": client_projection, "projection_driver": driver_projection})
        times = pd.DataFrame(rows).median()

        table = result.table
        gds_scores = table.set_index("uid")["score"]
        key_of = dict(zip(edges["source"], edges["source_key"], strict=True)) | dict(
            zip(edges["target"], edges["target_key"], strict=True))
        igraph_scores = pd.Series(scores, index=keys)
        rho = spearmanr(gds_scores.to_numpy(), igraph_scores.reindex([key_of[uid] for uid in gds_scores.index]))[0]

    print("\nseconds (median of repeats)")
    for name, value in times.items():
        print(f"  {name:26s} {value:8.2f}")
    print(f"\natlas gds pageRank end to end / igraph build + PageRank: "
          f"{times['gds_pagerank_end_to_end'] / times['igraph_build_pagerank']:.1f}x (target <= 10x)")
    print(f"run_algorithm pageRank in-process / igraph build + PageRank: "
          f"{times['gds_pagerank_in_process'] / times['igraph_build_pagerank']:.1f}x")
    print(f"atlas analyze modules (Leiden) / igraph build + Leiden: "
          f"{times['modules_leiden'] / times['igraph_build_leiden']:.1f}x; "
          f"bare Leiden stream / igraph: {times['leiden_stream_only'] / times['igraph_build_leiden']:.1f}x")
    print(f"projection through the graphdatascience client / same statement through the driver: "
          f"{times['projection_client'] / times['projection_driver']:.2f}x")
    print(f"\nPageRank GDS vs igraph, Spearman over features: {rho:.4f}")
    print(f"modules: GDS Leiden {module_result.summary['modules']}, igraph Leiden {igraph_count}")


if __name__ == "__main__":
    main()
