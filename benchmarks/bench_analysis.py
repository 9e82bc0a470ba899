"""Benchmark the hub report and the unannotated-hubs query on the reference-sized synthetic run.

Setup (not timed): a synthetic run of the reference study's shape (1,393,850 edges at scale 1, from
``benchmarks/synthetic.py``) loaded with the online loader, plus activation frequencies, annotations (53.8 % of source
features, as in the study) and top genes written with parameterised UNWIND.

Timed, in one process and one run:
  1. the full hub report through Neo4j + GDS: memory check, projection, degrees (out/in/per layer), PageRank,
     betweenness (sampled), annotation join, unannotated hubs with top genes, write-back of every feature; then
     step by step on GDS's native projection and on the Cypher projection (the path every scope that is not the
     whole graph takes), alternated ``--rounds`` times, with the ratio and whether both computed the same table;
  2. the same figures with an in-memory baseline on the same edges (numpy + scipy.sparse for degrees and PageRank,
     networkx for sampled betweenness, pandas for unannotated hubs), and whether both agree;
  3. p50/p95 latency of the `unannotated_hubs` library query over N calls, raw (graph.read) and through the
     read-only path of `atlas query` (EXPLAIN check + read transaction), next to the same lookup in pandas;
  4. the cost of the shard visibility fence (loaders/online.py): the `hubs` library query and the scope count that
     precedes every projection, as shipped next to the same statements with the fence's filter taken out (they
     scan the AFFECTS(shard) index instead of seeking the scope's visible keys).

Run with your own instance, e.g.::

    ATLAS_HOME=/tmp/atlas-bench ATLAS_BOLT_PORT=7702 ATLAS_HTTP_PORT=7402 ATLAS_NEO4J_HEAP=2g \
    ATLAS_NEO4J_PAGECACHE=2g .venv/bin/python benchmarks/bench_analysis.py --scale 1

or on a run already imported (``atlas ingest RUN_DIR --offline``) and annotated by an earlier invocation::

    .venv/bin/python benchmarks/bench_analysis.py --run-dir RUN_DIR --skip-setup
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from scipy import sparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import queries  # noqa: E402
from atlas.analysis import hubs as hub_analysis  # noqa: E402
from atlas.analysis.degrees import degree_table  # noqa: E402
from atlas.analysis.projection import projected  # noqa: E402
from atlas.analysis.scope import resolve_scope  # noqa: E402
from atlas.db.connection import Graph, connect  # noqa: E402
from atlas.runformat import read_manifest  # noqa: E402
from benchmarks.synthetic import add_run_arguments, ensure_synthetic_run  # noqa: E402
from loaders.hubs import write_hubs  # noqa: E402
from loaders.online import ingest_run  # noqa: E402
from loaders.runs import uids  # noqa: E402
from queries.readonly import run_read_only  # noqa: E402

ANALYSIS_RUN_DIR = Path("/tmp/atlas-bench-analysis/run")  # shared with bench_workbench
ANNOTATED_SHARE = 0.538  # reference study: 53.8 % of the traced features carry an annotation
TOP_GENES = 10
BATCH = 2000


def load_edges(run_dir: Path) -> pd.DataFrame:
    """Every edge of the run's Parquet shards: integer node keys (layer * 100000 + feature, as an in-memory library
    would use), target layer, and the uids for comparing with the graph."""
    manifest = read_manifest(run_dir)
    table = pq.read_table(sorted(run_dir.glob("edges-*.parquet")),
                          columns=["source_feature", "target_layer", "target_feature"])
    source = table.column("source_feature").to_numpy().astype(np.int64)
    layer = table.column("target_layer").to_numpy().astype(np.int64)
    target = table.column("target_feature").to_numpy().astype(np.int64)
    source_layer = np.full(len(source), manifest.source_layer, dtype=np.int64)
    return pd.DataFrame({
        "source_key": source_layer * 100_000 + source, "target_key": layer * 100_000 + target, "target_layer": layer,
        "source": uids(manifest, source_layer, source), "target": uids(manifest, layer, target)})


def ensure_loaded(graph: Graph, run_dir: Path, scale: float, seed: int) -> str:
    """Write the synthetic run (once) and ingest it (a no-op when it is already in the graph)."""
    ensure_synthetic_run(run_dir, scale, seed)
    started = time.perf_counter()
    report = ingest_run(graph, run_dir)
    print(f"setup: online ingest {report.edges_written:,} new edges in {time.perf_counter() - started:.1f} s "
          f"(status {report.status})")
    return report.run_id


def source_annotations(edges: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Activation frequencies tracking degree, annotations and top genes of the source features (seeded)."""
    rng = np.random.default_rng(seed)
    degree = edges.groupby("source").size()
    features = pd.DataFrame({"uid": degree.index, "out_degree": degree.to_numpy()})
    features["activation_freq"] = np.clip(features["out_degree"] / 343 * 0.02 * rng.lognormal(0, 0.4, len(features)),
                                          0.001, 1.0)
    features["annotated"] = rng.random(len(features)) < ANNOTATED_SHARE
    features["term"] = [f"GO:{rng.integers(0, 500):07d}" if flag else None for flag in features["annotated"]]
    features["genes"] = [[f"GENE{g}" for g in rng.choice(2000, TOP_GENES, replace=False)] for _ in range(len(features))]
    return features


def write_annotations(graph: Graph, features: pd.DataFrame) -> None:
    """Write the source features' annotations and top genes (idempotent)."""
    rows = features[["uid", "activation_freq", "annotated", "term", "genes"]].to_dict(orient="records")
    statement = (
        "UNWIND $rows AS row MATCH (f:Feature {uid: row.uid}) "
        "SET f.activation_freq = row.activation_freq, f.annotated = row.annotated, "
        "f.label = CASE WHEN row.annotated THEN row.term END "
        "WITH f, row CALL (f, row) { WITH f, row WHERE row.term IS NOT NULL "
        "  MERGE (t:Term {id: row.term}) ON CREATE SET t.name = 'term ' + row.term, t.source = 'GO' "
        "  MERGE (f)-[e:ENRICHED_IN]->(t) SET e.p_adj = 0.001 } "
        "WITH f, row UNWIND range(0, size(row.genes) - 1) AS rank "
        "MERGE (g:Gene {id: row.genes[rank]}) ON CREATE SET g.symbol = row.genes[rank] "
        "MERGE (f)-[r:TOP_GENE]->(g) SET r.rank = rank + 1, r.weight = 1.0 / (rank + 1)")
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        graph.write(statement, rows=rows[start:start + BATCH])
    print(f"setup: annotations and top genes of {len(rows):,} source features in {time.perf_counter() - started:.1f} s")


def gds_hub_report(graph: Graph, run_id: str, rule: hub_analysis.HubRule) -> tuple[float, hub_analysis.HubReport]:
    """Time the full hub report (with write-back) through Neo4j + GDS."""
    scope = resolve_scope(graph, [run_id])
    started = time.perf_counter()
    report = hub_analysis.hub_report(graph, scope, rule, write=True)
    return time.perf_counter() - started, report


def gds_breakdown(graph: Graph, runs: list[str], rule: hub_analysis.HubRule, native: bool = True
                  ) -> tuple[dict[str, float], pd.DataFrame]:
    """Seconds per step of the hub report over some runs, on GDS's native projection where it is exact (else, and
    with ``native=False``, the Cypher projection), and the hub table it computed."""
    scope = resolve_scope(graph, runs)
    times, mark = {}, time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        times[name] = now - mark
        mark = now

    with projected(graph, scope, native=native) as projection:
        lap("memory check + projection")
        table = degree_table(projection)
        lap("degrees (out, in, per layer)")
        table = hub_analysis.with_centralities(projection, table)
        lap("pagerank + betweenness")
        table = hub_analysis.classified(graph, table, rule)
        lap("annotation join + hub classes")
        hub_analysis.unannotated_from_table(table, projection, rule, genes=5)
        lap("unannotated hubs + top genes")
        made = "native" if projection.native else "cypher"
    lap("drop projection")
    write_hubs(graph, scope.key, table)
    lap("write-back")
    return {"projection made": made, **times}, table


def paths_side_by_side(graph: Graph, runs: list[str], rule: hub_analysis.HubRule, rounds: int) -> None:
    """Print the hub report's steps on the native and on the Cypher projection, alternated ``rounds`` times (the
    machine is shared: ranges, not single figures), and whether both computed the same hub table."""
    seconds: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    tables = {}
    for _ in range(rounds):
        for native in (True, False):
            times, tables[native] = gds_breakdown(graph, runs, rule, native)
            made = times.pop("projection made")
            seconds[native].append(times)
    print(f"    projection made: {made} when asked for the Cypher one; {rounds} rounds, native then Cypher each "
          f"(load average {os.getloadavg()[0]:.1f}); seconds min-max:")
    for step in seconds[True][0]:
        ranges = [[times[step] for times in seconds[native]] for native in (True, False)]
        print(f"    step: {step:<40} native {min(ranges[0]):6.2f}-{max(ranges[0]):6.2f}   "
              f"cypher {min(ranges[1]):6.2f}-{max(ranges[1]):6.2f}")
    totals = {native: [sum(times.values()) for times in seconds[native]] for native in (True, False)}
    ratios = [cypher / native for native, cypher in zip(totals[True], totals[False], strict=True)]
    print(f"    hub report: native {min(totals[True]):.2f}-{max(totals[True]):.2f} s, cypher "
          f"{min(totals[False]):.2f}-{max(totals[False]):.2f} s; cypher / native per round "
          f"{min(ratios):.2f}-{max(ratios):.2f}x")
    native_table, cypher_table = (tables[native].set_index("uid").sort_index() for native in (True, False))
    exact = [column for column in native_table.columns if column not in ("pagerank", "betweenness", "label")]
    same = bool(native_table.index.equals(cypher_table.index)
                and native_table[exact].equals(cypher_table[exact]))
    pagerank = float(np.max(np.abs(native_table["pagerank"] / cypher_table["pagerank"] - 1)))
    betweenness = float(np.nanmax(np.abs(native_table["betweenness"] - cypher_table["betweenness"])))
    print(f"    native vs cypher hub tables: features, degrees, per-layer degrees, annotations, hub classes and "
          f"ranks identical {same}; PageRank max relative difference {pagerank:.1e}; betweenness max absolute "
          f"difference {betweenness:.3g}")


def baseline_hub_report(edges: pd.DataFrame, features: pd.DataFrame, rule: hub_analysis.HubRule,
                        samples: int) -> tuple[dict[str, float], pd.DataFrame]:
    """The same hub figures in memory on integer node keys: numpy degrees, scipy.sparse PageRank (GDS formula),
    networkx sampled betweenness, pandas hub classes and unannotated hubs."""
    times = {}
    started = time.perf_counter()
    keys, codes = np.unique(np.concatenate([edges["source_key"].to_numpy(), edges["target_key"].to_numpy()]),
                            return_inverse=True)
    source, target = codes[:len(edges)], codes[len(edges):]
    out_degree = np.bincount(source, minlength=len(keys))
    in_degree = np.bincount(target, minlength=len(keys))
    target_layer = edges["target_layer"].to_numpy()
    per_layer = {layer: np.bincount(source[target_layer == layer], minlength=len(keys))
                 for layer in np.unique(target_layer)}
    times["degrees: out, in, per layer (numpy)"] = time.perf_counter() - started
    started = time.perf_counter()
    matrix = sparse.csr_matrix((1.0 / out_degree[source], (target, source)), shape=(len(keys), len(keys)))
    rank = np.full(len(keys), 0.15)
    for _ in range(20):
        rank = 0.15 + 0.85 * (matrix @ rank)
    times["pagerank, 20 iterations (scipy.sparse, GDS formula)"] = time.perf_counter() - started
    started = time.perf_counter()
    network = nx.DiGraph()
    network.add_edges_from(zip(source.tolist(), target.tolist(), strict=True))
    times["networkx graph build"] = time.perf_counter() - started
    started = time.perf_counter()
    betweenness = nx.betweenness_centrality(network, k=samples, normalized=False, seed=42)
    times[f"betweenness (networkx, k={samples})"] = time.perf_counter() - started
    started = time.perf_counter()
    uid_of = pd.concat([pd.Series(edges["source"].to_numpy(), index=edges["source_key"].to_numpy()),
                        pd.Series(edges["target"].to_numpy(), index=edges["target_key"].to_numpy())])
    uid_of = uid_of[~uid_of.index.duplicated()]
    table = pd.DataFrame({"uid": uid_of.reindex(keys).to_numpy(), "out_degree": out_degree, "in_degree": in_degree,
                          "pagerank": rank, "betweenness": pd.Series(betweenness).reindex(range(len(keys))).to_numpy()})
    table = table.merge(features[["uid", "annotated"]], on="uid", how="left")
    table["annotated"] = table["annotated"].eq(True)
    table["hub"] = table["out_degree"] > rule.threshold
    unannotated = table[table["hub"] & ~table["annotated"]].sort_values("out_degree", ascending=False)
    times["uids, hub class, unannotated hubs (pandas)"] = time.perf_counter() - started
    del per_layer, unannotated
    return times, table


def latencies(call, calls: int) -> np.ndarray:
    """Milliseconds of ``calls`` calls after one warm-up."""
    call()
    values = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        values.append((time.perf_counter() - started) * 1000)
    return np.array(values)


FENCE_FILTER = "edge.shard IN visible AND "


def fence_cost(graph: Graph, run_id: str, calls: int) -> None:
    """Print p50 latencies of fenced statements next to the same statements without the fence's filter."""
    print(f"\n[4] shard visibility fence, {calls} calls each:")
    for name, text, parameters in (
            ("hubs library query (top 20 by live out-degree)", queries.get("hubs").text,
             {"run": run_id, "layers": None, "limit": 20, "max_q": None, "q_column": "q"}),
            ("scope size count (before every projection)", queries.internal("scope_size").text,
             {"runs": [run_id], "layers": None, "max_q": None, "q_column": "q"})):
        assert FENCE_FILTER in text, f"{name}: the statement no longer has the fence's filter"
        fenced = np.percentile(latencies(lambda text=text, p=parameters: graph.read(text, **p), calls), 50)
        plain_text = text.replace(FENCE_FILTER, "edge.shard IS NOT NULL AND ")  # the same index, no fence
        plain = np.percentile(latencies(lambda t=plain_text, p=parameters: graph.read(t, **p), calls), 50)
        print(f"    {name:<50} fenced p50 {fenced:8.1f} ms, without the fence {plain:8.1f} ms, "
              f"ratio {fenced / plain:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, ANALYSIS_RUN_DIR)
    parser.add_argument("--calls", type=int, default=100, help="query calls for the latency figures")
    parser.add_argument("--threshold", type=float, default=1000, help="hub rule: out-degree above this")
    parser.add_argument("--rounds", type=int, default=3, help="native/Cypher alternations of the step breakdown")
    parser.add_argument("--skip-setup", action="store_true",
                        help="the run is loaded and annotated already (e.g. `atlas ingest RUN_DIR --offline` and an "
                             "earlier run of this benchmark): skip the load check and the annotation writes")
    args = parser.parse_args()
    rule = hub_analysis.HubRule(threshold=args.threshold)

    with connect() as graph:
        version, _, gds_version = graph.server_versions()
        print(f"Neo4j {version}, GDS {gds_version}, scale {args.scale}")
        run_id = (read_manifest(args.run_dir).run_id if args.skip_setup
                  else ensure_loaded(graph, args.run_dir, args.scale, args.seed))
        edges = load_edges(args.run_dir)
        features = source_annotations(edges, args.seed)
        if not args.skip_setup:
            write_annotations(graph, features)
        print(f"run {run_id}: {len(edges):,} edges, {edges['source'].nunique():,} source features")

        seconds, report = gds_hub_report(graph, run_id, rule)
        summary = report.hubs.summary
        print(f"\n[1] full hub report via Neo4j + GDS (degrees, PageRank, betweenness, unannotated hubs, "
              f"write-back): {seconds:.2f} s")
        print(f"    hubs {summary['hubs']} ({summary['rule']}), unannotated {len(report.unannotated_hubs.table)}, "
              f"betweenness {summary['betweenness']}, written {summary['written']:,} features")
        print("\n[1b] the hub report step by step, on GDS's native projection and on the Cypher projection:")
        paths_side_by_side(graph, [run_id], rule, args.rounds)

        base_times, base = baseline_hub_report(edges, features, rule, hub_analysis.betweenness_samples(len(edges)))
        base_total = sum(base_times.values())
        print(f"\n[2] in-memory baseline on the same edges: {base_total:.2f} s (no persistence, no write-back)")
        for step, value in base_times.items():
            print(f"    step: {step:<75} {value:7.2f} s")
        merged = report.features.merge(base, on="uid", suffixes=("_gds", "_base"))
        same_degrees = bool((merged["out_degree_gds"] == merged["out_degree_base"]).all()
                            and (merged["in_degree_gds"] == merged["in_degree_base"]).all())
        pagerank_error = float(np.max(np.abs(merged["pagerank_gds"] - merged["pagerank_base"])
                                      / merged["pagerank_base"]))
        same_hubs = set(merged.loc[merged["hub_gds"], "uid"]) == set(merged.loc[merged["hub_base"], "uid"])
        print(f"    agreement: degrees identical {same_degrees}, PageRank max relative difference "
              f"{pagerank_error:.2e}, hub sets identical {same_hubs}")
        vectorised = sum(value for step, value in base_times.items() if "networkx" not in step)
        print(f"    ratio GDS report / baseline: {seconds / base_total:.2f}x; GDS report / numpy+scipy part of the "
              f"baseline (no betweenness, {vectorised:.2f} s): {seconds / vectorised:.1f}x")

        named = queries.get("unannotated_hubs")
        parameters = named.bind({"scope": run_id})
        raw = latencies(lambda: graph.read(named.text, **parameters), args.calls)
        guarded = latencies(lambda: run_read_only(graph, named.text, parameters), args.calls)
        rows = len(graph.read(named.text, **parameters))
        hubs = base[base["hub"] & ~base["annotated"]]
        in_memory = latencies(lambda: hubs.sort_values("out_degree", ascending=False).head(50), args.calls)
        print(f"\n[3] unannotated_hubs query ({rows} rows), {args.calls} calls each:")
        for name, values in (("Neo4j, graph.read (the query alone)", raw),
                             ("Neo4j, atlas query read-only path (EXPLAIN check + read tx)", guarded),
                             ("baseline: pandas filter on an in-memory table", in_memory)):
            print(f"    {name:<62} p50 {np.percentile(values, 50):8.2f} ms  p95 {np.percentile(values, 95):8.2f} ms")
        print(f"    ratio p95 Neo4j query / pandas: {np.percentile(raw, 95) / np.percentile(in_memory, 95):.0f}x")
        fence_cost(graph, run_id, max(5, args.calls // 10))
        targets = {"report <= 60 s": seconds <= 60, "query p95 <= 100 ms": np.percentile(raw, 95) <= 100,
                   "atlas query path p95 <= 100 ms": np.percentile(guarded, 95) <= 100}
        print("\ntargets: " + ", ".join(f"{name}: {'met' if met else 'MISSED'}" for name, met in targets.items()))


if __name__ == "__main__":
    main()
