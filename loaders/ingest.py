"""`atlas ingest`'s loads as library calls: validate every run first, then load them online or import offline.

The other two modes are :func:`loaders.online.delete_run` and :func:`loaders.lock.unlock`. ``progress(stage, done,
total)`` reports each stage (``validate RUN``, ``ingest RUN``, ``write import files``); the caller draws it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from atlas.db.connection import Graph
from atlas.progress import StageProgress
from atlas.runformat import read_manifest
from loaders.annotations import annotation_rows
from loaders.offline import BulkImportReport, bulk_import
from loaders.online import DEFAULT_BATCH_SIZE, DEFAULT_STREAMS, IngestReport, ingest_run
from loaders.runs import ValidatedRun, validate_run


def validate_runs(run_dirs: Sequence[str | Path], progress: StageProgress | None = None) -> list[ValidatedRun]:
    """Validate every run directory (nothing is written); a bad shard anywhere raises before any load starts."""
    runs = []
    for run_dir in map(Path, run_dirs):
        step = _counter(progress, f"validate {run_dir.name}", len(read_manifest(run_dir).shards))
        runs.append(validate_run(run_dir, progress=lambda record, step=step: step(1)))
    return runs


def _counter(progress: StageProgress | None, stage: str, total: int) -> Callable[[int], None]:
    """A callback taking increments that reports ``progress(stage, done so far, total)``."""
    done = 0

    def step(amount: int) -> None:
        nonlocal done
        done += amount
        if progress is not None:
            progress(stage, done, total)

    return step


def load_runs(graph: Graph, run_dirs: Sequence[str | Path], *, batch_size: int = DEFAULT_BATCH_SIZE,
              streams: int = DEFAULT_STREAMS, progress: StageProgress | None = None) -> list[IngestReport]:
    """Load the runs online (batched over Bolt), each shard exactly once; all are validated before any write."""
    runs = validate_runs(run_dirs, progress)
    reports = []
    for run in runs:
        stage = f"ingest {run.run_id}"
        reports.append(ingest_run(graph, run, batch_size=batch_size, streams=streams,
                                  progress=None if progress is None else
                                  lambda written, total, stage=stage: progress(stage, written, total)))
    return reports


def import_runs_offline(run_dirs: Sequence[str | Path], *, sae_atlas: str | Path | None = None,
                        model: str | None = None, sae: str | None = None, gmt_files: Sequence[str | Path] = (),
                        force: bool = False, progress: StageProgress | None = None) -> BulkImportReport:
    """Replace the managed database by a neo4j-admin import of the runs, plus an SAE atlas's catalogs and GMT gene
    sets; ``model``/``sae`` of the feature uids default to the runs' (when they agree)."""
    runs = validate_runs(run_dirs, progress)
    names = {(run.manifest.model, run.manifest.sae) for run in runs}
    default_model, default_sae = next(iter(names)) if len(names) == 1 else (None, None)
    annotations = annotation_rows(sae_atlas, model or default_model, sae or default_sae, None, gmt_files)
    step = _counter(progress, "write import files", sum(run.edge_count for run in runs))
    return bulk_import(runs, annotations, force=force, progress=step)
