"""The whole-model atlas at scale: load, hub report, modules, feature pages and a run deletion, next to the same
figures on the reference-sized run (1,393,850 edges) measured in the same invocation.

The atlas has Geneformer V2-316M's shape: 18 layers of 4,608 features; every source layer 0..16 traced into every
later layer (17 runs). Edges per downstream layer decay with the distance as in the reference study (layer 5 into
6, 11, 17: 694,646 / 443,381 / 255,823 edges, an exponential decay of the distance fitted to 6 and 17 that predicts
11 within 0.5 %), scaled so that the whole atlas has about 50M edges at ``--scale 1``; out-degrees are heavy-tailed
as in the reference (benchmarks/synthetic.py). Source features per layer are ``4,065 x scale``, as the reference
run's generator scales them.

Each of the two atlases (the reference run alone, then the whole-model atlas) goes through, in a throwaway managed
Neo4j (its own ATLAS_HOME and free ports, so your atlas is never touched):

1. the offline import of every run but the last source layer (``neo4j-admin database import``: files + import);
2. the last source layer loaded online (the reference: none, it is one run);
3. the hub report over all runs chained (degrees, PageRank, sampled betweenness, unannotated hubs, write-back),
   then again step by step (benchmarks/bench_analysis.py's breakdown);
4. modules (Leiden on the |d|-weighted undirected projection);
5. the explorer's feature-page reads (document, first page of edges, 2-hop neighbourhood of 150 edges) of
   the top hubs: p50/p95 over the calls;
6. deleting one run (layer 5's, the reference run itself in the reference atlas);

and prints wall time, edges/s, the server's heap (used, and its maximum), the store's disk use
and the transaction-log size after the loads and after the deletion. Develop at ``--scale 0.02``; the targets
(50M edges loaded <= 20 min, hub report <= 60 s, feature pages p95 <= 200 ms) are for ``--scale 1`` on a quiet
machine with ``ATLAS_NEO4J_HEAP`` / ``ATLAS_NEO4J_PAGECACHE`` sized by the README's guidance::

    .venv/bin/python benchmarks/bench_atlas_scale.py --scale 0.02 --reference-scale 0.1
    ATLAS_NEO4J_HEAP=8g ATLAS_NEO4J_PAGECACHE=6g .venv/bin/python benchmarks/bench_atlas_scale.py --scale 1
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.throwaway import use_throwaway_instance  # noqa: E402

LAYERS = 18
ATLAS_EDGES = 50_000_000
REFERENCE_SOURCE_LAYER = 5
HUB_PAGES = 20  # top hubs whose feature pages are timed
PAGE_CALLS = 5  # calls of each page query per hub


def atlas_edges_by_layer(scale: float) -> dict[int, dict[int, int]]:
    """Source layer -> downstream layer -> edges of the whole-model atlas (about ``50M x scale`` edges in all)."""
    from benchmarks.synthetic import REFERENCE_EDGES_BY_LAYER

    first, _, last = REFERENCE_EDGES_BY_LAYER.values()
    decay = math.log(first / last) / (17 - 6)  # per layer of distance, from the reference's L6 and L17

    def expected(distance: int) -> float:
        return first * math.exp(-decay * (distance - 1))

    shape = {source: {target: expected(target - source) for target in range(source + 1, LAYERS)}
             for source in range(LAYERS - 1)}
    factor = ATLAS_EDGES * scale / sum(sum(layers.values()) for layers in shape.values())
    return {source: {target: max(1, round(edges * factor)) for target, edges in layers.items()}
            for source, layers in shape.items()}


def directory_bytes(path: Path) -> int:
    """Bytes of the files under ``path`` (0 when it does not exist)."""
    return sum(entry.stat().st_size for entry in path.rglob("*") if entry.is_file()) if path.exists() else 0


def mib(size: float) -> str:
    return f"{size / (1 << 20):,.0f} MiB"


class Figures(dict):
    """Figure name -> value of one atlas, in the order measured."""

    def timed(self, name: str, call: Callable, edges: int | None = None):
        clock = time.perf_counter()
        result = call()
        seconds = time.perf_counter() - clock
        self[f"{name} s"] = seconds
        if edges is not None:
            self[f"{name} edges/s"] = edges / seconds
        print(f"    {name}: {seconds:.2f} s" + (f" ({edges:,} edges, {edges / seconds:,.0f} edges/s)"
                                                   if edges is not None else ""), flush=True)
        return result

    def resources(self, config, graph, when: str) -> None:
        """Heap (used, collectable garbage included), store and transaction-log size."""
        import queries

        heap = graph.read(queries.internal("server_heap").text)[0]
        self[f"heap used {when}"] = int(heap["used"])
        self["heap max"] = int(heap["max"])
        self[f"store {when}"] = directory_bytes(config.home / "data" / "databases" / "neo4j")
        self[f"tx logs {when}"] = directory_bytes(config.home / "data" / "transactions" / "neo4j")
        print(f"    {when}: heap used {mib(heap['used'])} of {mib(heap['max'])}, store "
              f"{mib(self[f'store {when}'])}, tx logs {mib(self[f'tx logs {when}'])}", flush=True)


def measure(label: str, offline_dirs: list[Path], online_dir: Path | None, delete_run_id: str, rounds: int = 2
            ) -> Figures:
    """Load, analyse and delete one atlas in the throwaway server; every figure of the comparison."""
    import numpy as np

    from atlas.analysis import browse, hubs, modules
    from atlas.analysis.scope import resolve_scope
    from atlas.db import server
    from atlas.db.connection import connect
    from atlas.errors import AtlasError
    from benchmarks.bench_analysis import paths_side_by_side
    from loaders.offline import bulk_import
    from loaders.online import delete_run, ingest_run
    from loaders.runs import validate_run

    figures = Figures()
    config = server.ServerConfig.from_env()
    offline_runs = [validate_run(run_dir) for run_dir in offline_dirs]
    online_run = validate_run(online_dir) if online_dir else None
    offline_edges = sum(run.edge_count for run in offline_runs)
    figures["edges"] = offline_edges + (online_run.edge_count if online_run else 0)
    print(f"\n{label}: {len(offline_runs) + bool(online_run)} runs, {figures['edges']:,} edges "
          f"(load average {os.getloadavg()[0]:.1f})", flush=True)
    clock = time.perf_counter()
    report = bulk_import(offline_runs, force=True)
    figures["offline import s"] = report.seconds_write_files + report.seconds_import
    figures["offline import edges/s"] = offline_edges / figures["offline import s"]
    figures["offline end to end s"] = time.perf_counter() - clock
    print(f"    offline import: {figures['offline import s']:.2f} s (files {report.seconds_write_files:.1f} + "
          f"neo4j-admin {report.seconds_import:.1f}; {figures['offline import edges/s']:,.0f} edges/s), end to "
          f"end {figures['offline end to end s']:.1f} s", flush=True)
    with connect() as graph:
        if online_run:
            figures.timed("online load", lambda: ingest_run(graph, online_run), online_run.edge_count)
        figures["loaded end to end s"] = time.perf_counter() - clock
        figures.resources(config, graph, "after load")
        runs = [run.run_id for run in offline_runs] + ([online_run.run_id] if online_run else [])
        scope = resolve_scope(graph, runs)
        report = figures.timed("hub report", lambda: hubs.hub_report(graph, scope))
        print("    the hub report step by step, on GDS's native projection and on the Cypher projection:")
        paths_side_by_side(graph, runs, hubs.DEFAULT_RULE, rounds)
        try:
            figures.timed("modules", lambda: modules.modules(graph, scope))
        except AtlasError as error:  # e.g. refused for want of heap: the figures after it still count
            figures["modules s"] = float("nan")
            print(f"    modules: FAILED ({error})", flush=True)
        top = report.hubs.table["uid"].head(HUB_PAGES).tolist()
        # The explorer's own reads behind a feature page: the document, the first page of edges, the 2-hop
        # neighbourhood pruned to 150 edges (atlas.analysis.browse, what /api/features/... answers).
        pages = {"feature_document": lambda uid: browse.feature_document(graph, uid),
                 "feature_edges": lambda uid: browse.feature_edges(graph, uid),
                 "neighbourhood": lambda uid: browse.neighbourhood(graph, uid, hops=2)}
        for name, page in pages.items():
            values = []
            for uid in top:
                for _ in range(PAGE_CALLS):
                    started = time.perf_counter()
                    page(uid)
                    values.append((time.perf_counter() - started) * 1000)
            figures[f"{name} p50 ms"] = float(np.percentile(values, 50))
            figures[f"{name} p95 ms"] = float(np.percentile(values, 95))
            print(f"    {name} of the top {len(top)} hubs: p50 {figures[f'{name} p50 ms']:.1f} ms, p95 "
                  f"{figures[f'{name} p95 ms']:.1f} ms", flush=True)
        deleted = figures.timed("delete one run", lambda: delete_run(graph, delete_run_id))
        figures["delete one run edges/s"] = deleted.edges_deleted / figures["delete one run s"]
        figures.resources(config, graph, "after delete")
    return figures


def main() -> None:
    """Write both atlases, measure them in one throwaway server, print the figures side by side."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 50M-edge atlas (default 1)")
    parser.add_argument("--reference-scale", type=float, default=1.0,
                        help="fraction of the 1,393,850-edge reference run measured alongside (default 1)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the runs and the instance go (temp)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--rounds", type=int, default=2,
                        help="native/Cypher alternations of the hub report's step breakdown (default 2)")
    parser.add_argument("--neo4j-tx-logs", action="store_true",
                        help="Neo4j's own transaction-log and checkpoint settings instead of the managed server's "
                             "bounded ones (ATLAS_NEO4J_TX_LOGS=neo4j), to compare the log size")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-atlas-scale-"))
    use_throwaway_instance(workdir / "instance")
    if args.neo4j_tx_logs:
        os.environ["ATLAS_NEO4J_TX_LOGS"] = "neo4j"

    from atlas.db import server
    from benchmarks.synthetic import make_synthetic_run

    clock = time.perf_counter()
    reference = make_synthetic_run(workdir / "reference", scale=args.reference_scale, seed=0,
                                   run_id="reference-L05")
    layers = atlas_edges_by_layer(args.scale)
    atlas_dirs = [make_synthetic_run(workdir / f"atlas-L{source:02d}", scale=args.scale, seed=source,
                                     run_id=f"atlas-L{source:02d}", source_layer=source, edges_by_layer=by_layer)
                  for source, by_layer in layers.items()]
    print(f"runs written in {time.perf_counter() - clock:.1f} s under {workdir}: reference (scale "
          f"{args.reference_scale:g}) and a {len(atlas_dirs)}-run atlas of "
          f"{sum(sum(by_layer.values()) for by_layer in layers.values()):,} edges (scale {args.scale:g})")
    config = server.start(server.ServerConfig.from_env())
    print(f"throwaway Neo4j at {config.bolt_uri}: heap {config.heap}, page cache {config.pagecache}, transaction "
          f"logs {config.tx_logs}, {os.cpu_count()} CPUs")
    try:
        base = measure("reference run", [reference], None, "reference-L05", args.rounds)
        atlas = measure("whole-model atlas", atlas_dirs[:-1], atlas_dirs[-1], f"atlas-L{REFERENCE_SOURCE_LAYER:02d}",
                        args.rounds)
    finally:
        server.stop(config)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{'figure':<32} {'reference':>14} {'atlas':>14} {'atlas/ref':>10}")
    for name, value in atlas.items():
        if name not in base:
            print(f"{name:<32} {'--':>14} {value:>14,.2f}")
            continue
        shown = mib if name.startswith(("heap", "store", "tx logs")) else (lambda number: f"{number:,.2f}")
        ratio = value / base[name] if base[name] else float("nan")
        print(f"{name:<32} {shown(base[name]):>14} {shown(value):>14} {ratio:>9.2f}x")
    pages_p95 = max(atlas[f"{name} p95 ms"] for name in ("feature_document", "feature_edges", "neighbourhood"))
    targets = {"loaded <= 20 min": atlas["loaded end to end s"] <= 1200,
               "hub report <= 60 s": atlas["hub report s"] <= 60, "feature pages p95 <= 200 ms": pages_p95 <= 200}
    verdicts = ", ".join(f"{name}: {'met' if met else 'MISSED'}" for name, met in targets.items())
    print(f"\ntargets (set for --scale 1; this run: --scale {args.scale:g}): {verdicts}")


if __name__ == "__main__":
    main()
