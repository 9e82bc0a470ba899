"""Build an atlas from a release: the online loader into an existing atlas (exactly once per run), the offline
import into a fresh database, or the release's dump restored.

Every path verifies the release first and reads every edge file (schema and values) before anything is written; the
online path also refuses, before writing, a run the atlas already holds with other content. Edges go through the
run loaders themselves (:mod:`loaders.online`, :mod:`loaders.offline`): a release's run is a
:class:`~loaders.runs.ValidatedRun` whose shards are read from the release, so the loaded Run nodes and edges are the
ones the source atlas had.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from atlas.db.connection import Graph, connect
from atlas.errors import AtlasError
from atlas.progress import StageProgress
from atlas.release.verify import verify_release
from atlas.releaseformat import DUMP_DIR, edges_path, read_release_json, table_path
from atlas.runformat import Manifest, ShardRecord, read_edge_table
from loaders.annotations import AnnotationRows, load_annotations
from loaders.experiments import load_result_rows
from loaders.offline import bulk_import, restore_dump
from loaders.online import ingest_run, run_state
from loaders.runs import IDENTITY, ValidatedRun, edge_endpoints, run_properties
from loaders.schema import apply_schema

MODES = ("online", "offline", "dump")
BATCH = 5_000


@dataclass
class ReleaseRun(ValidatedRun):
    """A run of a release: its manifest from ``release.json``, its shards' edges from the release's edge files."""

    release_dir: Path = Path()

    def read(self, record: ShardRecord) -> pa.Table:
        """The edges of one shard, schema and values checked (the release's checksums vouch for the file)."""
        return read_edge_table(self.release_dir / edges_path(self.run_id, record.file), record.rows, self.manifest)


def release_runs(directory: Path, release: dict[str, Any], features: dict[str, dict[str, Any]]
                 ) -> list[ReleaseRun]:
    """The release's runs, every edge file read and checked once (nothing is written); a calibrated run's feature
    calibration comes from the features table (``calibration_*`` properties naming the run)."""
    runs = []
    for entry in release["runs"]:
        manifest = Manifest.from_dict(entry["manifest"])
        calibration = [{name: value for name, value in row.items() if name == "uid" or name.startswith("calibration_")}
                       for row in features.values() if row.get("calibration_run") == manifest.run_id]
        run = ReleaseRun(directory / edges_path(manifest.run_id, ""), manifest, list(manifest.shards),
                         calibration=calibration, release_dir=directory)
        keys = [np.empty(0, np.int64)]
        for record in run.shards:
            keys += [np.unique(endpoints) for endpoints in edge_endpoints(manifest, run.read(record))]
        distinct = np.unique(np.concatenate(keys))
        run.features = np.stack([distinct >> 32, distinct & 0xFFFFFFFF], 1)
        runs.append(run)
    return runs


def _rows(directory: Path, name: str) -> list[dict[str, Any]]:
    """A table's rows as property maps without the missing values (a missing value is no property)."""
    return [{key: value for key, value in row.items() if value is not None}
            for row in pq.read_table(directory / table_path(name)).to_pylist()]


def _pairs(rows: list[dict[str, Any]], source: str, target: str) -> dict[tuple[str, str], dict[str, Any]]:
    return {(row.pop(source), row.pop(target)): row for row in rows}


def annotation_rows(directory: Path) -> AnnotationRows:
    """The release's features, genes, terms and their links as loader rows."""
    rows = AnnotationRows()
    rows.features = {row["uid"]: row for row in _rows(directory, "features")}
    rows.genes = {row["id"]: row for row in _rows(directory, "genes")}
    rows.terms = {row["id"]: row for row in _rows(directory, "terms")}
    rows.top_genes = _pairs(_rows(directory, "feature_genes"), "feature", "gene")
    rows.enriched_in = _pairs(_rows(directory, "feature_terms"), "feature", "term")
    rows.member_of = _pairs(_rows(directory, "gene_terms"), "gene", "term")
    return rows


def _links(directory: Path, name: str, source: str) -> list[dict[str, Any]]:
    return [{"source": row.pop(source), "feature": row.pop("feature"), "properties": row}
            for row in _rows(directory, name)]


def experiment_rows(directory: Path) -> tuple[dict[str, list], dict[str, list]]:
    """The release's experiment result nodes and their links to features, as :func:`loaders.experiments.
    load_result_rows` takes them."""
    nodes = {"interactions": _rows(directory, "interactions"), "steering": _rows(directory, "steering"),
             "runs": _rows(directory, "experiment_runs")}
    links = {"members": _links(directory, "interaction_members", "interaction"),
             "targets": _links(directory, "interaction_targets", "interaction"),
             "steers": _links(directory, "steering_features", "steering")}
    return nodes, links


def _present(graph: Graph, run: ReleaseRun) -> bool:
    """Whether the atlas already holds exactly this run (a no-op to load); refuse one it holds with other content."""
    state = run_state(graph, run.run_id)
    if state is None:
        return False
    expected = run_properties(run.manifest)
    differs = [name for name in IDENTITY if state.get(name) != expected[name]]
    if state.get("shards") != [r.file for r in run.shards] or \
            state.get("shard_checksums") != [r.sha256 for r in run.shards]:
        differs.append("shards")
    if differs:
        raise AtlasError(f"run {run.run_id} is already in the atlas with other content ({', '.join(differs)} "
                         f"differ); nothing was loaded: delete it first (atlas ingest --delete {run.run_id})")
    return True


def load_release(
    directory: str | Path,
    *,
    mode: str = "online",
    force: bool = False,
    streams: int = 2,
    progress: StageProgress | None = None,
) -> dict[str, Any]:
    """Verify the release at ``directory`` and build the atlas from it; return what was loaded.

    ``online`` adds its runs, annotations and experiment results to the atlas (a run it holds with the same content
    is skipped, with other content refused); ``offline`` imports them into a fresh managed database; ``dump``
    restores the release's database dump. ``force`` lets the last two replace a database that is not empty.
    """
    started = time.perf_counter()
    say = progress or (lambda stage, done, total: None)
    directory = Path(directory)
    if mode not in MODES:
        raise AtlasError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    problems = verify_release(directory)
    if problems:
        more = f" (and {len(problems) - 1} more: atlas release verify {directory})" if len(problems) > 1 else ""
        raise AtlasError(f"{directory} is not a sound release, nothing was loaded: {problems[0]}{more}")
    release = read_release_json(directory)
    summary: dict[str, Any] = {"directory": str(directory), "mode": mode, "runs": [e["id"] for e in release["runs"]]}
    if mode == "dump":
        if not release.get("dump"):
            raise AtlasError(f"{directory} has no dump (create the release with --dump), nothing was loaded")
        restore_dump(directory / DUMP_DIR, force)
        say("dump restored", 1, 1)
        return {**summary, "seconds": round(time.perf_counter() - started, 3)}
    annotations = annotation_rows(directory)
    runs = release_runs(directory, release, annotations.features)
    say("release read", 1, 1)
    if mode == "offline":
        report = bulk_import(runs, annotations, force=force)
        with connect() as graph:
            summary["experiment_nodes"] = load_result_rows(graph, *experiment_rows(directory))
        summary.update(edges_written=report.edges, loaded=summary["runs"], already_present=[])
    else:
        with connect() as graph:
            apply_schema(graph)
            present = {run.run_id for run in runs if _present(graph, run)}
            reports = [ingest_run(graph, run, streams=streams) for run in runs if run.run_id not in present]
            load_annotations(graph, annotations)
            summary["experiment_nodes"] = load_result_rows(graph, *experiment_rows(directory))
        summary.update(edges_written=sum(report.edges_written for report in reports),
                       loaded=[report.run_id for report in reports], already_present=sorted(present))
    return {**summary, "seconds": round(time.perf_counter() - started, 3)}
