"""Atlas releases at the reference study's scale: create, verify and load times and the size on disk, next to
ingesting the run directory itself, all in one run on one throwaway managed instance.

A synthetic run of the reference shape (benchmarks/synthetic.py: 1,393,850 edges at scale 1) is ingested from its
run directory (validation included: what `atlas ingest` does), offline and online; a release of it is created
(edges, tables, one JSON document per feature), verified, then loaded offline into the replaced database and online
after the run was deleted. Each release load is printed as a ratio against the ingest of the run directory by the
same path, measured in the same run (the target: a release loads no slower than its run directory ingests).

    .venv/bin/python benchmarks/bench_release.py                 # full scale
    .venv/bin/python benchmarks/bench_release.py --scale 0.1     # a tenth (a busy machine)
    .venv/bin/python benchmarks/bench_release.py --scale 0.1 --dump
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.throwaway import use_throwaway_instance  # noqa: E402


def _timed(label: str, work: Callable[[], Any]) -> tuple[float, Any]:
    print(f"{label} ...", flush=True)
    clock = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - clock
    print(f"  {seconds:.1f}s", flush=True)
    return seconds, result


def _size(path: Path, pattern: str = "*") -> int:
    return sum(item.stat().st_size for item in path.rglob(pattern) if item.is_file())


def main() -> None:
    """Ingest a synthetic run, release it, verify and load the release; print times, sizes and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the reference run (default 1)")
    parser.add_argument("--dump", action="store_true", help="also release with a dump and restore it")
    parser.add_argument("--workdir", type=Path, default=None, help="where the run, release and instance go (temp)")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-release-"))
    use_throwaway_instance(workdir / "instance", memory="1g")

    from atlas.db import server
    from atlas.db.connection import connect
    from atlas.release import create_release, load_release, verify_release
    from benchmarks.synthetic import make_synthetic_run
    from loaders.digest import graph_digest
    from loaders.offline import bulk_import
    from loaders.online import delete_run, ingest_run
    from loaders.runs import validate_run

    run_dir = make_synthetic_run(workdir / "run", scale=args.scale, seed=0)
    run_id = validate_run(run_dir).run_id
    config = server.start()
    try:
        ingest_offline, _ = _timed("ingest the run directory offline (validate + neo4j-admin import)",
                                   lambda: bulk_import([validate_run(run_dir)], force=True))
        with connect() as graph:
            reference = graph_digest(graph)
            edges = reference["relationships"]["AFFECTS"]
            delete_run(graph, run_id)
            ingest_online, _ = _timed("ingest the run directory online (validate + online loader)",
                                      lambda: ingest_run(graph, validate_run(run_dir)))
            release = workdir / "release"
            create_seconds, summary = _timed("release create", lambda: create_release(
                graph, release, [run_id], dump=args.dump))
        verify_seconds, problems = _timed("release verify", lambda: verify_release(release))
        assert problems == [], problems
        load_offline, _ = _timed("release load --offline", lambda: load_release(release, mode="offline", force=True))
        with connect() as graph:
            assert graph_digest(graph) == reference, "offline release load differs from the ingested run"
            delete_run(graph, run_id)
        load_online, _ = _timed("release load (online)", lambda: load_release(release))
        with connect() as graph:
            assert graph_digest(graph) == reference, "online release load differs from the ingested run"
        load_dump = None
        if args.dump:
            load_dump, _ = _timed("release load --dump", lambda: load_release(release, mode="dump", force=True))
            with connect() as graph:
                assert graph_digest(graph) == reference, "dump restore differs from the ingested run"
    finally:
        server.stop(config)

    print(f"\nscale {args.scale}: {edges:,} edges, {summary['counts']['features']:,} features, "
          f"{summary['counts']['documents']:,} feature documents")
    print(f"{'step':<44} {'seconds':>9} {'edges/s':>11}  ratio to ingesting the run directory")
    rows = [("ingest run directory, offline (baseline)", ingest_offline, None),
            ("ingest run directory, online (baseline)", ingest_online, None),
            ("release create", create_seconds, None), ("release verify", verify_seconds, None),
            ("release load --offline", load_offline, ingest_offline),
            ("release load (online)", load_online, ingest_online)]
    if load_dump is not None:
        rows.append(("release load --dump", load_dump, ingest_offline))
    for name, seconds, baseline in rows:
        ratio = f"{seconds / baseline:.2f}x the time ({'met' if seconds <= baseline else 'NOT met'})" \
            if baseline else ""
        print(f"{name:<44} {seconds:>9.1f} {edges / seconds:>11,.0f}  {ratio}")
    sizes = {name: _size(release / name) / 1e6 for name in ("runs", "tables", "features", "dump")}
    print(f"\nrelease size on disk: {_size(release) / 1e6:,.1f} MB (edges {sizes['runs']:,.1f} MB, tables "
          f"{sizes['tables']:,.1f} MB, feature documents {sizes['features']:,.1f} MB, dump {sizes['dump']:,.1f} MB); "
          f"run directory {_size(run_dir) / 1e6:,.1f} MB")

if __name__ == "__main__":
    main()
