"""A trace run on disk: plan it, run its units (any order, any machine, resumable), merge cell shards, finalise.

Run directory::

    manifest.json                       atlas.runformat manifest; extra.config / extra.plan say how to rerun any unit
    states/<unit>.safetensors           Welford state of one unit (source-feature range x cell range)
    deltas/<unit>.safetensors           per-cell deltas of that unit (only with --keep-deltas; atlas.trace.deltas)
    edges-F<first>-<end>.parquet        significant edges of one source-feature range, all cells (after merge)
    pvalues-F<first>-<end>.safetensors  every p < 1 of that range's tests and each edge's p, float64 (for exact BH)
    features-F<first>-<end>.parquet     per source feature: cells where active, edges per downstream layer

Every file is written atomically and deterministically (fixed order, no timestamps), so a unit killed half-way
leaves nothing behind and its rerun produces byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from atlas.cells import Cells, load_cells
from atlas.errors import AtlasError
from atlas.model import load_model, model_name, resolve_device, resolve_dtype
from atlas.runformat import (
    FINAL_EDGE_SCHEMA,
    Manifest,
    file_sha256,
    read_manifest,
    write_file_atomically,
    write_manifest,
    write_shard,
)
from atlas.sae.biosae import ACTIVATION_MEAN, CHECKPOINT, find_layer_dirs, load_sae_set
from atlas.stats import benjamini_hochberg
from atlas.trace.deltas import DELTAS, DeltaRecorder
from atlas.trace.engine import trace_cells
from atlas.trace.memory import BatchChoice, choose_batch_size
from atlas.trace.plan import Unit, make_plan, units_from_dicts
from atlas.trace.setup import GENEFORMER_NON_GENE_TOKENS, TraceSetup
from atlas.trace.stats import Thresholds, WelfordState, layer_statistics, significant
from atlas.version import __version__

STATES = "states"
SUMMARY_SCHEMA = pa.schema([("run_id", pa.string()), ("source_layer", pa.int16()), ("source_feature", pa.int32()),
                            ("target_layer", pa.int16()), ("cells_active", pa.int32()), ("edges", pa.int32())])


@dataclass
class TraceConfig:
    """Everything a worker needs to rerun any unit of a run (stored in the manifest)."""

    model: str
    saes: str
    cells: str
    source_layer: int
    downstream_layers: list[int]
    token_dictionary: str | None = None
    gene_median_dictionary: str | None = None
    max_length: int = 2048
    n_cells: int | None = None
    precision: str = "fp32"
    batch_size: int | None = None  # ablated variants per forward; None: chosen from free memory at run time
    non_gene_tokens: list[int] = field(default_factory=lambda: list(GENEFORMER_NON_GENE_TOKENS))
    active: str = "topk"
    sample: int | None = None
    seed: int = 42
    normalization: str = "geneformer"

    def load_cells(self) -> Cells:
        """The run's cells, drawn and tokenized exactly as at planning time."""
        return load_cells(self.cells, token_dictionary=self.token_dictionary,
                          gene_median_dictionary=self.gene_median_dictionary, max_length=self.max_length,
                          n_cells=self.n_cells, sample=self.sample, seed=self.seed, normalization=self.normalization)

    def load_setup(self, device: str | torch.device = "auto") -> TraceSetup:
        """Model and SAEs on ``device``, validated against each other."""
        device = resolve_device(device) if isinstance(device, str) else device
        model = load_model(self.model, device, resolve_dtype(self.precision))
        saes = load_sae_set(self.saes, [self.source_layer, *self.downstream_layers], device)
        return TraceSetup(model, saes, self.source_layer, list(self.downstream_layers),
                          tuple(self.non_gene_tokens), device, self.active)


def weights_digest(config: TraceConfig) -> str:
    """SHA-256 over the model's config and weight files and the used layers' SAE checkpoints and means, so a worker
    never mixes a run with retrained SAEs or another model."""
    model_dir = Path(config.model)
    files = sorted(path for path in model_dir.iterdir()
                   if path.name == "config.json" or path.suffix in (".safetensors", ".bin"))
    layer_dirs = find_layer_dirs(config.saes)
    for layer in sorted({config.source_layer, *config.downstream_layers}):
        if layer in layer_dirs:
            files += [layer_dirs[layer] / CHECKPOINT, layer_dirs[layer] / ACTIVATION_MEAN]
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}:{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def _resolved(path: str | None) -> str | None:
    return None if path is None else str(Path(path).resolve())


def plan_run(run_dir: str | Path, config: TraceConfig, features: np.ndarray, *, thresholds: Thresholds,
             features_per_shard: int, cells_per_shard: int | None, cells: Cells, selection: dict,
             run_id: str | None = None, model_layers: int | None = None,
             sae_features: dict[int, int] | None = None) -> Manifest:
    """Write the manifest of a new run (status ``running``) with its shard plan; an identical plan is a no-op.

    ``model_layers`` and ``sae_features`` (layer -> SAE width) bound the layers and features a loader accepts.
    """
    sae_features = sae_features or {}
    run_dir = Path(run_dir)
    config = TraceConfig(**{**asdict(config), "model": _resolved(config.model), "saes": _resolved(config.saes),
                            "cells": _resolved(config.cells), "token_dictionary": _resolved(config.token_dictionary),
                            "gene_median_dictionary": _resolved(config.gene_median_dictionary)})
    features = np.asarray(features, dtype=np.int64)
    units = make_plan(features, cells.n_cells, features_per_shard, cells_per_shard)
    weights = weights_digest(config)
    identity = json.dumps([asdict(config), features.tolist(), cells.digest, weights, thresholds.as_dict()],
                          sort_keys=True)
    run_id = run_id or f"trace-L{config.source_layer:02d}-{hashlib.sha256(identity.encode()).hexdigest()[:12]}"
    manifest = Manifest(
        run_id=run_id, model=model_name(config.model), sae=Path(config.saes).name, source_layer=config.source_layer,
        downstream_layers=sorted(config.downstream_layers), n_cells=cells.n_cells, cell_set_digest=cells.digest,
        thresholds={**thresholds.as_dict(), "min_cells": 2}, active=config.active, code_version=__version__,
        created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        counts={"source_features": len(features), "units": len(units)},
        model_layers=model_layers, sae_features={str(layer): width for layer, width in sae_features.items()},
        extra={"config": asdict(config), "weights_digest": weights, "selection": selection,
               "cells": cell_choice(config),
               "source_features": features.tolist(),
               "plan": {"features_per_shard": features_per_shard, "cells_per_shard": cells_per_shard,
                        "units": [unit.as_dict() for unit in units]}})
    if (run_dir / "manifest.json").is_file():
        existing = read_manifest(run_dir)
        keys = ("config", "weights_digest", "plan", "source_features")
        same = (existing.run_id, existing.thresholds, *(existing.extra.get(key) for key in keys)) == (
            manifest.run_id, manifest.thresholds, *(manifest.extra[key] for key in keys))
        if not same:
            raise AtlasError(f"{run_dir} already holds a different run ({existing.run_id}); use a new directory")
        return existing
    (run_dir / STATES).mkdir(parents=True, exist_ok=True)
    write_manifest(run_dir, manifest)
    return manifest


def cell_choice(config: TraceConfig) -> dict[str, Any]:
    """How the run's cells were chosen and encoded, as the manifest records it."""
    return {"sample": config.sample, "seed": config.seed if config.sample is not None else None,
            "n_cells": config.n_cells,
            "normalization": config.normalization if Path(config.cells).suffix.lower() == ".h5ad" else None}


def _plan_of(manifest: Manifest) -> tuple[TraceConfig, list[Unit], np.ndarray, Thresholds]:
    try:
        # a config without `active` was planned before the definition was recorded: it traced positive codes
        config = TraceConfig(**{"active": manifest.active, **manifest.extra["config"]})
        units = units_from_dicts(manifest.extra["plan"]["units"])
        features = np.asarray(manifest.extra["source_features"], dtype=np.int64)
        thresholds = Thresholds(manifest.thresholds["cohens_d"], manifest.thresholds["consistency"],
                                manifest.thresholds["consistency_definition"])
    except (KeyError, TypeError, ValueError) as error:
        raise AtlasError(f"manifest of {manifest.run_id} has no trace plan ({error}); "
                         "plan it with `atlas trace plan`") from error
    return config, units, features, thresholds


def _state_path(run_dir: Path, unit: Unit) -> Path:
    return run_dir / STATES / f"{unit.name}.safetensors"


@dataclass
class UnitReport:
    """What one invocation of :func:`run_units` did."""

    ran: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    ablated_passes: int = 0
    cells: int = 0
    batch: BatchChoice | None = None


def _deltas_path(run_dir: Path, unit: Unit) -> Path:
    return run_dir / DELTAS / f"{unit.name}.safetensors"


def run_units(run_dir: str | Path, units: list[int] | None = None, *, device: str = "auto",
              batch_size: int | None = None, max_memory: int | None = None, paths: dict[str, str] | None = None,
              on_start: Callable[[int], None] | None = None, on_cell: Callable[[], None] | None = None,
              on_passes: Callable[[int], None] | None = None,
              on_batch: Callable[[BatchChoice], None] | None = None, deltas_dtype: str | None = None) -> UnitReport:
    """Run the given plan units (default: all); units whose state file exists are finished and skipped.

    With ``deltas_dtype`` (``float16`` or ``float32``) every unit also keeps its per-cell deltas
    (:mod:`atlas.trace.deltas`); a finished unit without them runs again (its state comes out byte-identical).

    ``paths`` overrides input locations on this machine (keys ``model``, ``saes``, ``cells``, ``token_dictionary``,
    ``gene_median_dictionary``); the cells must still have the planned digest. ``on_start`` receives the number of
    cells to process, ``on_cell`` fires after each cell and ``on_passes`` with each batch of ablated passes.
    The batch size is ``batch_size``, else the plan's, else chosen from the device's free memory (capped by
    ``max_memory`` bytes for the whole process) for the longest pending cell; ``on_batch`` receives the choice.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    config, plan, selected, _ = _plan_of(manifest)
    unknown = set(paths or {}) - {"model", "saes", "cells", "token_dictionary", "gene_median_dictionary"}
    if unknown:
        raise ValueError(f"unknown input path override(s) {sorted(unknown)}")
    config = TraceConfig(**{**asdict(config), **(paths or {})})
    wanted = range(len(plan)) if units is None else units
    bad = [index for index in wanted if not 0 <= index < len(plan)]
    if bad:
        raise AtlasError(f"unit(s) {bad} not in the plan (0..{len(plan) - 1})")
    report = UnitReport()
    pending = []
    for index in wanted:
        done = _state_path(run_dir, plan[index]).is_file() and (
            deltas_dtype is None or _deltas_path(run_dir, plan[index]).is_file())
        (report.skipped if done else pending).append(index)
    if not pending:
        return report
    cells = config.load_cells()
    if cells.digest != manifest.cell_set_digest:
        raise AtlasError(f"{config.cells}: the cells differ from the planned cell set (digest mismatch)")
    if weights_digest(config) != manifest.extra.get("weights_digest"):
        raise AtlasError(f"the model or SAE weights differ from the planned ones (weights digest mismatch): "
                         f"plan a new run for {config.model} and {config.saes}")
    setup = config.load_setup(device)
    fixed = batch_size or config.batch_size
    if fixed is not None and fixed < 1:
        raise AtlasError(f"the batch size must be at least 1, not {fixed}")
    if fixed:
        report.batch = BatchChoice(fixed, "set by --batch-size" if batch_size else "set by the plan")
    else:
        longest = max((len(tokens) for index in pending
                       for tokens in cells.input_ids[plan[index].first_cell:plan[index].end_cell]), default=2)
        report.batch = choose_batch_size(setup, longest, max_memory)
    if on_batch is not None:
        on_batch(report.batch)
    if on_start is not None:
        on_start(sum(plan[index].end_cell - plan[index].first_cell for index in pending))
    for index in pending:
        unit = plan[index]
        features = unit.features(selected)
        state = WelfordState.empty(features, setup.layer_widths, setup.device)
        recorder = None if deltas_dtype is None else DeltaRecorder(setup.layer_widths, deltas_dtype)
        for cell, tokens in enumerate(cells.input_ids[unit.first_cell:unit.end_cell], start=unit.first_cell):
            trace_cells(setup, features, [tokens], batch_size=report.batch.size, state=state,
                        progress=on_passes, observe=None if recorder is None else recorder.observer(cell))
            report.cells += 1
            if on_cell is not None:
                on_cell()
        passes = int(state.n.sum())
        report.ablated_passes += passes
        if recorder is not None:
            # Written before the state: the state file is what marks a unit finished.
            (run_dir / DELTAS).mkdir(exist_ok=True)
            write_file_atomically(_deltas_path(run_dir, unit), save_safetensors(recorder.arrays()))
        # No safetensors metadata: its key order is not stable, and these files must be byte-identical on rerun.
        payload = save_safetensors(state.to_arrays())
        write_file_atomically(_state_path(run_dir, unit), payload)
        report.ran.append(index)
    return report


def _load_state(run_dir: Path, unit: Unit) -> WelfordState:
    path = _state_path(run_dir, unit)
    try:
        return WelfordState.from_arrays(load_safetensors(path.read_bytes()))
    except (OSError, ValueError, KeyError) as error:
        raise AtlasError(f"{path}: unreadable unit state ({error}); delete it and rerun the unit") from error


def edge_table(state: WelfordState, run_id: str, source_layer: int, thresholds: Thresholds
               ) -> tuple[pa.Table, np.ndarray, np.ndarray, int, pa.Table]:
    """Significant edges (sorted by source feature, target layer, target feature) of a merged state, with their
    float64 p-values, every p < 1 of the tests, the number of tests, and the per-feature summary."""
    columns: dict[str, list[np.ndarray]] = {name: [] for name in
                                            ("source_feature", "target_layer", "target_feature", "d", "mean", "std",
                                             "consistency", "n", "p")}
    below_one, n_tests = [], 0
    n_active = state.n.cpu().numpy()
    summary_edges = {}
    for layer in state.layers:
        stats = layer_statistics(state, layer, thresholds.consistency_mode)
        n_tests += stats.p.size
        below_one.append(stats.p[stats.p < 1.0])
        rows, targets = np.nonzero(significant(stats, thresholds))
        columns["source_feature"].append(stats.source_features[rows])
        columns["target_layer"].append(np.full(len(rows), layer))
        columns["target_feature"].append(targets)
        for name, values in (("d", stats.cohens_d), ("mean", stats.mean), ("std", stats.std),
                             ("consistency", stats.consistency), ("p", stats.p)):
            columns[name].append(values[rows, targets])
        columns["n"].append(stats.n[rows])
        per_feature = np.bincount(rows, minlength=len(stats.source_features))
        summary_edges[layer] = dict(zip(stats.source_features.tolist(), per_feature.tolist(), strict=True))
    merged = {name: np.concatenate(parts) for name, parts in columns.items()}
    order = np.lexsort((merged["target_feature"], merged["target_layer"], merged["source_feature"]))
    merged = {name: values[order] for name, values in merged.items()}
    edge_p = merged["p"].astype(np.float64)
    table = pa.table({"run_id": pa.array([run_id] * len(order), pa.string()),
                      "source_layer": np.full(len(order), source_layer, dtype=np.int16),
                      **{name: values for name, values in merged.items()}})
    summary = pa.table({
        "run_id": [run_id] * (len(state.source_features) * len(state.layers)),
        "source_layer": [source_layer] * (len(state.source_features) * len(state.layers)),
        "source_feature": [int(f) for f in state.source_features for _ in state.layers],
        "target_layer": [layer for _ in state.source_features for layer in state.layers],
        "cells_active": [int(n) for n in n_active for _ in state.layers],
        "edges": [summary_edges[layer].get(int(f), 0) for f in state.source_features for layer in state.layers],
    }, schema=SUMMARY_SCHEMA)
    return table, edge_p, np.sort(np.concatenate(below_one)), n_tests, summary


def _write_table(run_dir: Path, name: str, table: pa.Table) -> dict:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return {"file": name, "rows": table.num_rows, "sha256": write_file_atomically(run_dir / name,
                                                                                   sink.getvalue().to_pybytes())}


def merge_run(run_dir: str | Path) -> Manifest:
    """Merge each source-feature range's cell shards (Chan, in cell order) into its edge shard; status ``complete``.

    Refuses while units are missing. Feature ranges already merged are kept, so an interrupted merge resumes.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if manifest.status != "running":
        return manifest
    config, plan, _, thresholds = _plan_of(manifest)
    missing = [unit.index for unit in plan if not _state_path(run_dir, unit).is_file()]
    if missing:
        raise AtlasError(f"{len(missing)} unit(s) not finished yet (e.g. {missing[:5]}); run `atlas trace run`")
    ranges: dict[tuple[int, int], list[Unit]] = {}
    for unit in plan:
        ranges.setdefault((unit.first_feature, unit.end_feature), []).append(unit)
    shards, pvalue_files, summaries = [], [], []
    counts = {"tests": 0, "edges": 0, "edges_per_layer": {str(layer): 0 for layer in manifest.downstream_layers},
              "ablated_passes": 0, "clean_passes": 0, "features_with_edges": 0}
    for (first, end), units in sorted(ranges.items()):
        state = _load_state(run_dir, units[0])
        for unit in sorted(units[1:], key=lambda u: u.first_cell):
            state = state.merge(_load_state(run_dir, unit))
        table, edge_p, below_one, n_tests, summary = edge_table(state, manifest.run_id, manifest.source_layer,
                                                                thresholds)
        stem = f"F{first:06d}-{end:06d}"
        record = write_shard(run_dir, f"edges-{stem}.parquet", table)
        record.source_features, record.cells = [first, end], [0, manifest.n_cells]
        shards.append(record)
        payload = save_safetensors({"below_one": below_one, "edges": edge_p})
        pvalue_files.append({"file": f"pvalues-{stem}.safetensors", "shard": record.file, "tests": n_tests,
                             "sha256": write_file_atomically(run_dir / f"pvalues-{stem}.safetensors", payload)})
        summaries.append(_write_table(run_dir, f"features-{stem}.parquet", summary))
        counts["tests"] += n_tests
        counts["edges"] += table.num_rows
        for layer, n in zip(*np.unique(table.column("target_layer").to_numpy(), return_counts=True), strict=True):
            counts["edges_per_layer"][str(int(layer))] += int(n)
        counts["ablated_passes"] += int(state.n.sum())
        counts["clean_passes"] += manifest.n_cells
        counts["features_with_edges"] += len(np.unique(table.column("source_feature").to_numpy()))
    manifest.shards = shards
    manifest.counts = {**manifest.counts, **counts}
    manifest.extra = {**manifest.extra, "pvalues": pvalue_files, "feature_summaries": summaries,
                      **_deltas_listing(run_dir, plan)}
    manifest.status = "complete"
    write_manifest(run_dir, manifest)
    return manifest


def _deltas_listing(run_dir: Path, plan: list[Unit]) -> dict:
    kept = [unit for unit in plan if _deltas_path(run_dir, unit).is_file()]
    if not kept:
        return {}
    return {"deltas": [{"unit": unit.index, "file": f"{DELTAS}/{unit.name}.safetensors",
                        "sha256": file_sha256(_deltas_path(run_dir, unit))} for unit in kept]}


def record_deltas(run_dir: str | Path) -> Manifest:
    """List the kept deltas files with their checksums in the manifest of a merged run (merge does it for a run
    traced with them; this covers deltas kept by tracing again after the merge)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    _, plan, _, _ = _plan_of(manifest)
    listing = _deltas_listing(run_dir, plan)
    if manifest.status != "running" and listing.get("deltas") != manifest.extra.get("deltas"):
        manifest.extra = {**manifest.extra, **listing}
        write_manifest(run_dir, manifest)
    return manifest


def finalize_run(run_dir: str | Path) -> Manifest:
    """Add run-level Benjamini-Hochberg q-values to every edge (exact: all p < 1 of all tests plus the test count)
    and mark the run ``finalized``. Idempotent."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if manifest.status == "finalized":
        return manifest
    if manifest.status != "complete":
        raise AtlasError(f"run {manifest.run_id} is {manifest.status}: merge it first (`atlas trace merge`)")
    loaded = []
    for entry in manifest.extra["pvalues"]:
        path = run_dir / entry["file"]
        if not path.is_file() or file_sha256(path) != entry["sha256"]:
            raise AtlasError(f"{path}: missing or changed since the merge")
        loaded.append(load_safetensors(path.read_bytes()))
    family = np.sort(np.concatenate([values["below_one"] for values in loaded]))
    family_q = benjamini_hochberg(family, manifest.counts["tests"])
    for record, values in zip(manifest.shards, loaded, strict=True):
        table = pq.read_table(run_dir / record.file)
        if "q" in table.column_names:
            table = table.drop_columns(["q"])
        # q is a non-decreasing function of p, so each edge's q is read at its p's place in the sorted family.
        edge_q = family_q[np.searchsorted(family, values["edges"], side="left")]
        table = table.append_column("q", pa.array(edge_q.astype(np.float32))).cast(FINAL_EDGE_SCHEMA)
        updated = write_shard(run_dir, record.file, table)
        record.rows, record.sha256 = updated.rows, updated.sha256
    manifest.counts = {**manifest.counts,
                       "edges_q_below_0_05": int(sum(np.count_nonzero(
                           family_q[np.searchsorted(family, values["edges"])] < 0.05) for values in loaded))}
    manifest.status = "finalized"
    write_manifest(run_dir, manifest)
    return manifest


def run_status(run_dir: str | Path) -> dict:
    """Plan progress of a run: units done and pending, status, counts."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    config, plan, _, thresholds = _plan_of(manifest)
    done = [unit.index for unit in plan if _state_path(run_dir, unit).is_file()]
    return {"run_id": manifest.run_id, "status": manifest.status, "active": manifest.active,
            "consistency": thresholds.consistency_mode, "cells": manifest.extra.get("cells", cell_choice(config)),
            "units": len(plan), "units_done": len(done),
            "pending": [unit.index for unit in plan if unit.index not in set(done)], "counts": manifest.counts}

