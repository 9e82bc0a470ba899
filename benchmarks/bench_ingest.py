"""Edge loading speed at the reference study's scale: offline import vs online loader vs a naive loader, one run.

A synthetic run of the reference shape (benchmarks/synthetic.py: 4,065 source features at layer 5, 1,393,850
edges into layers 6/11/17) is loaded into a throwaway managed Neo4j instance (its own ATLAS_HOME and free ports,
so your atlas is never touched), three ways:

1. offline: import files + ``neo4j-admin database import full`` (the headline: writing the files from the shards
   plus the neo4j-admin process from JVM start to exit, the server being down), also timed end to end with the
   server stop before and the restart and schema after; neo4j-admin's own "IMPORT DONE" time (from its log) is
   printed to show its fixed JVM and store set-up cost; and neo4j-admin's floor on this machine: the same nodes and
   relationships imported with no relationship property (into a scratch database, deleted after), timed the same
   way; the ratio floor rate / our rate is the figure to keep low (target <= 1.5x). ``--repeat N`` alternates our
   import and the floor N times (the machine is shared: compare ranges);
2. online: ``loaders.online.ingest_run`` (batched UNWIND, exactly-once shards, default streams) after the run
   was deleted again (which times the batched delete too): first on the server the import just restarted (cold
   JIT), then deleted and loaded again (warm: the headline), then once more with one stream (one shard at a time),
   a baseline of the same run; plus a batch-size sweep on a smaller synthetic run;
3. naive: one write transaction per edge on a subsample (uid lookups, no bookkeeping), extrapolated to the run.

What the online figure includes: everything ``ingest_run`` does after validation (schema check, load lock, Run
node, Feature MERGE and elementId lookup, re-reading and re-checking each shard, the edge transactions, their
bookkeeping and each shard's publication). Validation (the same for both paths) is timed separately and included
in neither.

Targets on a 2-core machine: online >= 30,000 edges/s, offline >= 300,000 edges/s, online >= 50x naive, the
floor's rate within 1.5x of the offline import's.

    .venv/bin/python benchmarks/bench_ingest.py                 # full scale
    .venv/bin/python benchmarks/bench_ingest.py --scale 0.1 --naive-edges 500
    .venv/bin/python benchmarks/bench_ingest.py --offline-only   # only the offline import
    .venv/bin/python benchmarks/bench_ingest.py --offline-only --run-dir runs/L05 --repeat 3   # an existing run
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synthetic import add_run_arguments, ensure_synthetic_run  # noqa: E402
from benchmarks.throwaway import use_throwaway_instance  # noqa: E402

TARGET_ONLINE, TARGET_OFFLINE, TARGET_RATIO, TARGET_FLOOR_RATIO = 30_000, 300_000, 50, 1.5
FEATURES_OF_MODEL = "MATCH (f:Feature {model: $model}) RETURN count(f) AS n"


def _row(name: str, edges: int, seconds: float, baseline: float | None, note: str = "") -> str:
    rate = edges / seconds if seconds > 0 else float("inf")
    ratio = f"{rate / baseline:9.1f}x" if baseline else "       --"
    return f"{name:<44} {edges:>11,} {seconds:>10.2f} {rate:>12,.0f} {ratio}  {note}"


def _rows(columns: dict, start: int, stop: int) -> list[list]:
    """Rows ``[source uid, target uid, d, mean, std, consistency, n, p, q, sign]`` (naive_edge_create.cypher)."""
    names = ("source", "target", "d", "mean", "std", "consistency", "n", "p", "q", "sign")
    return [list(row) for row in zip(*(columns[name][start:stop].tolist() for name in names), strict=True)]


def _reported_import_seconds(import_directory: str) -> float | None:
    """neo4j-admin's own "IMPORT DONE in 1m 2s 345ms" from its log: the import without JVM start and exit."""
    log = Path(import_directory) / "neo4j-admin.log"
    match = re.search(r"IMPORT DONE in ((?:\d+m )?(?:\d+s )?\d+ms)", log.read_text(errors="replace"))
    if not match:
        return None
    units = {"m": 60.0, "s": 1.0, "ms": 0.001}
    return sum(int(value) * units[unit] for value, unit in re.findall(r"(\d+)(ms|m|s)", match.group(1)))


def _admin_floor(config, import_directory: str) -> tuple[float, float | None]:
    """neo4j-admin wall time (and its own IMPORT DONE) for the offline import's Feature nodes and AFFECTS endpoints
    with no property: the least any import of these relationships costs here. Its file is written here from the
    endpoints of the import's own files (not timed). Imported into a scratch database that the running server never
    serves (Community serves one user database), removed after."""
    import pyarrow.csv as pcsv

    from atlas.db import server

    bulk, scratch = Path(import_directory), Path(import_directory) / "floor"
    scratch.mkdir(exist_ok=True)
    names = [f"c{i}" for i in range(len((bulk / "AFFECTS.header.csv").read_text().split(",")))]
    endpoints = pcsv.read_csv(bulk / "AFFECTS.csv", read_options=pcsv.ReadOptions(column_names=names),
                              convert_options=pcsv.ConvertOptions(include_columns=names[:2]))
    pcsv.write_csv(endpoints, scratch / "AFFECTS.csv", write_options=pcsv.WriteOptions(include_header=False))
    (scratch / "AFFECTS.header.csv").write_text(":START_ID(Feature),:END_ID(Feature)\n")
    database = "benchfloor"
    clock = time.perf_counter()
    result = server.run_admin(config, "database", "import", "full", database, "--overwrite-destination=true",
                              "--id-type=integer", f"--report-file={scratch / 'import.report'}",
                              f"--nodes=Feature={bulk / 'Feature.header.csv'},{bulk / 'Feature.csv'}",
                              f"--relationships=AFFECTS={scratch / 'AFFECTS.header.csv'},{scratch / 'AFFECTS.csv'}")
    seconds = time.perf_counter() - clock
    (scratch / "neo4j-admin.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    for data in ("databases", "transactions"):
        shutil.rmtree(config.home / "data" / data / database, ignore_errors=True)
    return seconds, _reported_import_seconds(str(scratch))


def _span(values: list[float], unit: str = "", digits: int = 2) -> str:
    low, high = f"{min(values):,.{digits}f}", f"{max(values):,.{digits}f}"
    return f"{low}{unit}" if low == high else f"{low}-{high}{unit}"


def _print_offline(imports: list) -> tuple[float, list[float]]:
    """Print each repetition's phases, our rate, the floor's and their ratio; return the last rate and all ratios."""
    print()
    print(f"{'offline import':<16} {'files':>7} {'admin':>7} {'(DONE)':>7} {'stop':>6} {'start':>6} {'schema':>7} "
          f"{'edges/s':>10} | {'floor':>6} {'(DONE)':>7} {'edges/s':>10} | {'floor/ours':>10}")
    rates, ratios = [], []
    for repetition, (offline, reported, floor_seconds, floor_reported) in enumerate(imports, 1):
        rate = offline.edges / (offline.seconds_write_files + offline.seconds_import)
        floor_rate = offline.edges / floor_seconds
        rates.append(rate)
        ratios.append(floor_rate / rate)
        print(f"{repetition:<16} {offline.seconds_write_files:>7.2f} {offline.seconds_import:>7.2f} "
              f"{reported or float('nan'):>7.2f} {offline.seconds_stop:>6.2f} {offline.seconds_start:>6.2f} "
              f"{offline.seconds_schema:>7.2f} {rate:>10,.0f} | {floor_seconds:>6.2f} "
              f"{floor_reported or float('nan'):>7.2f} {floor_rate:>10,.0f} | {ratios[-1]:>9.2f}x")
    edges = imports[-1][0].edges
    print(f"seconds; ours = Parquet -> CSV files + neo4j-admin (JVM start to exit; DONE = its own IMPORT DONE, the "
          f"rest JVM start, store set-up and exit), server down; stop, start and schema (constraint and index "
          f"creation) are the rest of the end-to-end path. Floor: the same {edges:,} relationships with no property. "
          f"Ours {_span(rates, digits=0)} edges/s, floor/ours {_span(ratios, 'x')} (target <= {TARGET_FLOOR_RATIO}x); "
          f"{TARGET_OFFLINE:,} edges/s needs files + import within {edges / TARGET_OFFLINE:.2f} s")
    return rates[-1], ratios


def _online_and_naive(graph, run, args, batch_size: int, offline_edges: int, offline_features: int, workdir: Path):
    """Delete the offline-imported run, load it online, sweep batch sizes on a second run, then the naive loader."""
    import queries
    from benchmarks.synthetic import REFERENCE_EDGES_BY_LAYER, make_synthetic_run
    from loaders.online import DEFAULT_STREAMS, delete_run, ingest_run
    from loaders.runs import edge_columns, edge_signs, validate_run

    print("delete the run (batched CALL { } IN TRANSACTIONS) ...", flush=True)
    clock = time.perf_counter()
    deleted = delete_run(graph, run.run_id)
    delete_seconds = time.perf_counter() - clock

    # The server was just restarted by the offline import, so its first load also pays the JIT compiling the write
    # path (~12 s more server CPU than the second load, measured). Both are printed: the first load (cold), then the
    # same load again on the warm server (a server that has been serving, the usual case for adding a run), and the
    # one-stream baseline, also warm.
    print(f"online loader, batch {batch_size}, {DEFAULT_STREAMS} stream(s), first load after the start ...", flush=True)
    cold = ingest_run(graph, run, batch_size=batch_size, streams=DEFAULT_STREAMS)
    online_features = graph.read(FEATURES_OF_MODEL, model=run.manifest.model)[0]["n"]
    assert (cold.edges_written, online_features) == (offline_edges, offline_features)
    delete_run(graph, run.run_id)
    print(f"online loader, batch {batch_size}, {DEFAULT_STREAMS} stream(s), warm server ...", flush=True)
    online = ingest_run(graph, run, batch_size=batch_size, streams=DEFAULT_STREAMS)
    assert online.edges_written == offline_edges
    print(f"online loader, batch {batch_size}, 1 stream (same-run baseline) ...", flush=True)
    delete_run(graph, run.run_id)
    single = ingest_run(graph, run, batch_size=batch_size, streams=1)
    assert single.edges_written == offline_edges

    sweep = []
    sweep_scale = args.sweep_edges / sum(REFERENCE_EDGES_BY_LAYER.values())
    sweep_run = validate_run(make_synthetic_run(workdir / "sweep", scale=sweep_scale, seed=1,
                                                run_id="bench-sweep", model="bench-sweep"))  # its own features
    for size in [int(value) for value in args.sweep.split(",") if value.strip()]:
        report = ingest_run(graph, sweep_run, batch_size=size)
        sweep.append((size, report.edges_written, report.seconds))
        delete_run(graph, sweep_run.run_id)

    print(f"naive loader, {args.naive_edges} edges one transaction each ...", flush=True)
    columns = edge_columns(run.manifest, run.read(run.shards[0]))
    columns["sign"] = edge_signs(columns["mean"])
    statement = queries.internal("naive_edge_create").text
    naive_edges = min(args.naive_edges, len(columns["d"]))
    clock = time.perf_counter()
    for start in range(naive_edges):
        graph.write(statement, run="bench-naive", rows=_rows(columns, start, start + 1))
    naive_seconds = time.perf_counter() - clock
    graph.autocommit("MATCH ()-[edge:AFFECTS]->() WHERE edge.run = 'bench-naive' "  # no shard key: a scan
                     "CALL (edge) { DELETE edge } IN TRANSACTIONS OF 10000 ROWS")
    return online, single, cold, deleted, delete_seconds, sweep, naive_edges, naive_seconds


def main() -> None:
    """Run the three loaders on one synthetic run and print edges per second and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_arguments(parser, None, "the run to load: an existing run directory (only read), or where the synthetic "
                                    "run is written (default: under --workdir)")
    parser.add_argument("--naive-edges", type=int, default=2000, help="edges loaded one transaction each")
    parser.add_argument("--batch-size", type=int, default=None, help="online batch size (default: the loader's)")
    parser.add_argument("--sweep", default="2000,5000,10000,20000,50000",
                        help="batch sizes to compare on a slice of the run ('' to skip)")
    parser.add_argument("--sweep-edges", type=int, default=100_000, help="edges of the sweep's run")
    parser.add_argument("--workdir", type=Path, default=None, help="where the run and the instance go (temp)")
    parser.add_argument("--offline-only", action="store_true", help="only the offline import (no online, naive)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="offline import and floor, alternated this many times (default 1)")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    use_throwaway_instance(workdir / "instance", memory="2g")

    import numpy as np
    import pyarrow.parquet as pq

    from atlas.db import server
    from atlas.db.connection import connect
    from benchmarks.synthetic import degree_summary
    from loaders.offline import bulk_import
    from loaders.online import DEFAULT_BATCH_SIZE, DEFAULT_STREAMS
    from loaders.runs import validate_run
    from loaders.schema import apply_schema

    batch_size = args.batch_size or DEFAULT_BATCH_SIZE
    run_dir = args.run_dir or workdir / "run"
    ensure_synthetic_run(run_dir, args.scale, args.seed)
    clock = time.perf_counter()
    run = validate_run(run_dir)
    validate_seconds = time.perf_counter() - clock
    sources = pq.read_table([run_dir / r.file for r in run.shards], columns=["source_feature"]).column(0)
    _, degrees = np.unique(sources.to_numpy(), return_counts=True)
    print(f"{run.edge_count:,} edges, {len(degrees):,} source features, out-degree {degree_summary(degrees)}; "
          f"validated every shard in {validate_seconds:.1f}s ({run.edge_count / validate_seconds:,.0f} edges/s)")
    config = server.start()
    print(f"throwaway Neo4j at {config.bolt_uri} (heap {config.heap}, page cache {config.pagecache}, "
          f"home {config.home}), load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    try:
        with connect() as graph:
            apply_schema(graph)

        imports = []
        for repetition in range(1, args.repeat + 1):
            print(f"offline import {repetition}/{args.repeat} ... (load average {os.getloadavg()[0]:.1f})", flush=True)
            offline = bulk_import([run], force=True)
            print("neo4j-admin floor: the same nodes and relationships without properties ...", flush=True)
            reported = _reported_import_seconds(offline.import_directory)  # the next import replaces its log
            imports.append((offline, reported, *_admin_floor(config, offline.import_directory)))
        with connect() as graph:
            offline_edges = graph.read("MATCH ()-[e:AFFECTS]->() RETURN count(e) AS n")[0]["n"]
            offline_features = graph.read(FEATURES_OF_MODEL, model=run.manifest.model)[0]["n"]
            assert offline_edges == run.edge_count, (offline_edges, run.edge_count)
            if not args.offline_only:
                online, single, cold, deleted, delete_seconds, sweep, naive_edges, naive_seconds = (
                    _online_and_naive(
                        graph, run, args, batch_size, offline_edges, offline_features, workdir))
    finally:
        server.stop()
    print(f"load average after the loads {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")

    offline_rate, ratios = _print_offline(imports)
    if args.offline_only:
        print(f"offline (import files + neo4j-admin, server down) = {offline_rate:10,.0f} edges/s "
              f"(target >= {TARGET_OFFLINE:,})  {'MET' if offline_rate >= TARGET_OFFLINE else 'MISSED'}; "
              f"end to end (+ stop, start, schema) {offline.edges_per_second:,.0f} edges/s; floor / offline "
              f"{_span(ratios, 'x')} (target <= {TARGET_FLOOR_RATIO}x)  "
              f"{'MET' if max(ratios) <= TARGET_FLOOR_RATIO else 'MISSED'}")
        return

    naive_rate = naive_edges / naive_seconds
    print()
    print(f"{'loader':<44} {'edges':>11} {'seconds':>10} {'edges/s':>12} {'vs naive':>10}")
    print(_row(f"naive: 1 transaction per edge (n={naive_edges:,})", naive_edges, naive_seconds, naive_rate))
    print(_row("naive extrapolated to the whole run", run.edge_count, run.edge_count / naive_rate, naive_rate))
    print(_row(f"online: {DEFAULT_STREAMS} stream(s) x batches of {batch_size:,}", online.edges_written,
               online.seconds, naive_rate, f"(warm server; validation {validate_seconds:.1f}s before: not included, "
               "as offline)"))
    print(_row(f"online: {DEFAULT_STREAMS} stream(s), first load after the start", cold.edges_written, cold.seconds,
               naive_rate, "(the same load on the server just restarted: cold JIT)"))
    print(_row(f"online: 1 stream x batches of {batch_size:,}", single.edges_written, single.seconds,
               naive_rate, "(same loader, one shard at a time, warm server)"))
    print(_row("offline: import files + neo4j-admin", offline.edges, offline.edges / offline_rate, naive_rate,
               "(server down; excludes the stop before and the start + schema after)"))
    print(_row("offline end to end: + server stop/start, schema", offline.edges, offline.seconds, naive_rate,
               f"(stop {offline.seconds_stop:.1f}s, start {offline.seconds_start:.1f}s, "
               f"schema {offline.seconds_schema:.1f}s)"))
    print(_row("delete the run (batched, own transactions)", deleted.edges_deleted, delete_seconds, naive_rate))
    print()
    print("online loader batch-size sweep (a second synthetic run, loaded and deleted at each size):")
    for size, edges, seconds in sweep:
        print(f"  batch {size:>6,}: {edges / seconds:>10,.0f} edges/s")
    online_rate = online.edges_per_second
    print()
    print(f"online / naive  = {online_rate / naive_rate:8.1f}x   (target >= {TARGET_RATIO}x)   "
          f"{'MET' if online_rate / naive_rate >= TARGET_RATIO else 'MISSED'}")
    print(f"online          = {online_rate:10,.0f} edges/s (target >= {TARGET_ONLINE:,})   "
          f"{'MET' if online_rate >= TARGET_ONLINE else 'MISSED'}; first load after a server start "
          f"{cold.edges_per_second:,.0f} edges/s {'MET' if cold.edges_per_second >= TARGET_ONLINE else 'MISSED'}")
    print(f"offline (files + neo4j-admin) = {offline_rate:10,.0f} edges/s (target >= {TARGET_OFFLINE:,})  "
          f"{'MET' if offline_rate >= TARGET_OFFLINE else 'MISSED'}; end to end {offline.edges_per_second:,.0f}")
    print(f"online {DEFAULT_STREAMS} stream(s) / 1 stream = "
          f"{online_rate / single.edges_per_second:.2f}x (same run)")
    print(f"offline / online = {offline_rate / online_rate:.1f}x (import), "
          f"{offline.edges_per_second / online_rate:.1f}x (end to end)")


if __name__ == "__main__":
    main()
