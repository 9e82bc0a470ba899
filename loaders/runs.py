"""From run directories to graph rows: validation of every shard, feature uids, AFFECTS columns, the Run node.

The online loader (:mod:`loaders.online`) and the offline import writer (:mod:`loaders.offline`) both take their
rows from here, so the two paths cannot drift apart.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from atlas.errors import AtlasError
from atlas.runformat import MANIFEST, SHARD_COMPLETE, Manifest, ShardRecord, file_sha256, read_manifest, read_shard
from loaders.schema import feature_uid, shard_key

EXCITATORY, INHIBITORY = "excitatory", "inhibitory"
LOADING, PARTIAL, LOADED = "loading", "partial", "loaded"
STATISTICS = ("d", "mean", "std", "consistency", "n", "p", "q", "perm_p", "perm_q")
# Manifest fields that identify a run: a graph Run node that disagrees with them belongs to another run.
IDENTITY = ("kind", "model", "sae", "source_layer", "downstream_layers", "n_cells", "cell_set_digest")


@dataclass
class ValidatedRun:
    """A run directory whose manifest and every complete shard passed validation."""

    run_dir: Path
    manifest: Manifest
    shards: list[ShardRecord]                 # complete shards, manifest order
    incomplete: list[ShardRecord] = field(default_factory=list)
    features: np.ndarray = field(default_factory=lambda: np.empty((0, 2), np.int64))  # distinct (layer, index)
    calibration: list[dict[str, Any]] = field(default_factory=list)  # calibrated source features' Feature properties

    @property
    def run_id(self) -> str:
        return self.manifest.run_id

    @property
    def edge_count(self) -> int:
        return sum(record.rows for record in self.shards)

    def shard(self, name: str) -> ShardRecord | None:
        """The complete shard record named ``name``, if any."""
        return next((record for record in self.shards if record.file == name), None)

    def read(self, record: ShardRecord) -> pa.Table:
        """Read one shard again, re-checking checksum, schema and values (the file may have changed since)."""
        return read_shard(self.run_dir, record, self.manifest)


def edge_keys(table: pa.Table) -> np.ndarray:
    """One int64 per edge of a run: source feature, target layer and target feature packed together."""
    source = table.column("source_feature").to_numpy().astype(np.int64)
    layer = table.column("target_layer").to_numpy().astype(np.int64)
    target = table.column("target_feature").to_numpy().astype(np.int64)
    return (source << 32) | (layer << 24) | target


def validate_run(run_dir: str | Path, progress: Callable[[ShardRecord], None] | None = None) -> ValidatedRun:
    """Validate the manifest and every complete shard (checksum, schema, values, no edge in two shards).

    Nothing is written anywhere; every problem raises an AtlasError naming the file, row and column.
    ``progress`` is called after each shard.
    """
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    complete = [record for record in manifest.shards if record.status == SHARD_COMPLETE]
    incomplete = [record for record in manifest.shards if record.status != SHARD_COMPLETE]
    keys, owners, features = [], [], [np.empty(0, np.int64)]
    per_layer = dict.fromkeys(manifest.downstream_layers, 0)
    for position, record in enumerate(complete):
        table = read_shard(run_dir, record, manifest)
        layers, counts = np.unique(table.column("target_layer").to_numpy(), return_counts=True)
        for layer, count in zip(layers.tolist(), counts.tolist(), strict=True):
            per_layer[layer] += count
        keys.append(edge_keys(table))
        owners.append(np.full(table.num_rows, position, np.int32))
        features += [np.unique(endpoints) for endpoints in edge_endpoints(manifest, table)]
        if progress is not None:
            progress(record)
    if keys:
        _refuse_edges_in_two_shards(run_dir, complete, np.concatenate(keys), np.concatenate(owners))
    _check_layer_counts(run_dir, manifest, incomplete, per_layer)
    distinct = np.unique(np.concatenate(features))
    # Only features the run's edges touch become nodes, so only theirs carry the calibration (online and offline).
    rows = calibration_rows(run_dir, manifest)
    indices = np.array([row.pop("index") for row in rows], dtype=np.int64)
    touched = np.isin(feature_keys(np.full(len(indices), manifest.source_layer), indices), distinct)
    calibration = [row for row, keep in zip(rows, touched, strict=True) if keep]
    return ValidatedRun(run_dir, manifest, complete, incomplete, np.stack([distinct >> 32, distinct & 0xFFFFFFFF], 1),
                        calibration)


def calibration_rows(run_dir: Path, manifest: Manifest) -> list[dict[str, Any]]:
    """Feature properties of `atlas trace calibrate` (its per-feature table, checksum verified); none when the run
    is not calibrated. A feature keeps the calibration of the last run loaded (``calibration_run`` names it); ``index``
    is the source feature's index."""
    entry = manifest.extra.get("calibration", {}).get("features")
    if entry is None:
        return []
    path = run_dir / entry["file"]
    if not path.is_file() or file_sha256(path) != entry["sha256"]:
        raise AtlasError(f"{path}: missing or changed since `atlas trace calibrate` wrote it")
    table = pq.read_table(path).to_pydict()
    return [{"uid": feature_uid(manifest.model, manifest.sae, manifest.source_layer, int(feature)), "index": feature,
             "calibration_run": manifest.run_id, "calibration_fdr": fdr, "calibration_observed_edges": observed,
             "calibration_expected_null_edges": expected, "calibration_surviving_edges": surviving}
            for feature, fdr, observed, expected, surviving in zip(
                table["source_feature"], table["fdr"], table["observed_edges"], table["expected_null_edges"],
                table["surviving_edges"], strict=True)]


def _check_layer_counts(run_dir: Path, manifest: Manifest, incomplete: list[ShardRecord],
                        per_layer: dict[int, int]) -> None:
    """Refuse a finished run whose manifest's edges per layer disagree with its shards."""
    recorded = manifest.counts.get("edges_per_layer")
    if recorded is None or incomplete or manifest.status == "running":
        return
    found = {str(layer): count for layer, count in per_layer.items()}
    if recorded != found:
        raise AtlasError(f"{run_dir / MANIFEST}: counts.edges_per_layer is {recorded}, but the shards hold {found}")


def _refuse_edges_in_two_shards(run_dir: Path, shards: list[ShardRecord], keys: np.ndarray,
                                owners: np.ndarray) -> None:
    order = np.argsort(keys, kind="stable")
    repeated = np.flatnonzero(keys[order][1:] == keys[order][:-1])
    if repeated.size:
        first, second = owners[order[repeated[0]]], owners[order[repeated[0] + 1]]
        key = int(keys[order[repeated[0]]])
        raise AtlasError(f"{run_dir}: edge {key >> 32} -> L{(key >> 24) & 0xFF}/{key & 0xFFFFFF} is in two shards "
                         f"({shards[first].file} and {shards[second].file})")


def feature_keys(layers: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """One int64 per (layer, feature index): a 1-D key sorts far faster than pairs."""
    return (layers.astype(np.int64) << 32) | indices.astype(np.int64)


def key_uids(manifest: Manifest, keys: np.ndarray) -> np.ndarray:
    """Feature uids (an object array) of feature keys of this run's model and SAE, formatted once per feature."""
    distinct, inverse = np.unique(keys, return_inverse=True)
    names = np.array([feature_uid(manifest.model, manifest.sae, int(key >> 32), int(key & 0xFFFFFFFF))
                      for key in distinct], dtype=object)
    return names[inverse.reshape(-1)]


def uids(manifest: Manifest, layers: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Feature uids (an object array) for parallel arrays of layers and feature indices."""
    return key_uids(manifest, feature_keys(layers, indices))


def feature_rows(run: ValidatedRun) -> list[dict[str, Any]]:
    """One row per feature the run's edges touch: uid, model, sae, layer, index."""
    manifest = run.manifest
    return [{"uid": feature_uid(manifest.model, manifest.sae, int(layer), int(index)), "model": manifest.model,
             "sae": manifest.sae, "layer": int(layer), "index": int(index)} for layer, index in run.features]


def edge_endpoints(manifest: Manifest, table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Source and target features of one shard's edges as int64 feature keys (see :func:`feature_keys`)."""
    sources = table.column("source_feature").to_numpy()
    return (feature_keys(np.full(len(sources), manifest.source_layer), sources),
            feature_keys(table.column("target_layer").to_numpy(), table.column("target_feature").to_numpy()))


def edge_properties(manifest: Manifest, table: pa.Table) -> dict[str, np.ndarray]:
    """AFFECTS statistics of one shard as float64/int64 (``run``, ``shard`` and :func:`edge_signs` come apart).

    ``q`` is None (no property) until the run is finalised, ``perm_p``/``perm_q`` until it is calibrated and on
    edges of features left out of the calibration; float32 values widen exactly to float64.
    """
    columns: dict[str, np.ndarray] = {}
    for name in STATISTICS:
        if name in table.column_names and table.column(name).null_count:
            values = table.column(name)
            columns[name] = np.where(values.is_valid().to_numpy(zero_copy_only=False),
                                     values.to_numpy(zero_copy_only=False).astype(np.float64).astype(object), None)
        elif name in table.column_names:
            values = table.column(name).to_numpy()
            columns[name] = values.astype(np.int64 if name == "n" else np.float64)
        else:
            columns[name] = np.full(table.num_rows, None, dtype=object)
    return columns


def edge_signs(mean: np.ndarray) -> np.ndarray:
    """The AFFECTS ``sign`` of each edge from its mean: the rule ingest_edges.cypher applies on the server, where the
    online loader leaves it (the online == offline test holds both to it)."""
    return np.where(mean > 0, EXCITATORY, INHIBITORY).astype(object)


def edge_columns(manifest: Manifest, table: pa.Table) -> dict[str, np.ndarray]:
    """AFFECTS columns of one shard: source and target uids plus :func:`edge_properties`."""
    sources, targets = edge_endpoints(manifest, table)
    return {"source": key_uids(manifest, sources), "target": key_uids(manifest, targets),
            **edge_properties(manifest, table)}


def run_properties(manifest: Manifest) -> dict[str, Any]:
    """The Run node's properties that come from the manifest (thresholds and calibration summary as sorted JSON
    text, the calibration's headline numbers as properties of their own)."""
    return {**calibration_properties(manifest),
        "id": manifest.run_id, "kind": manifest.kind, "model": manifest.model, "sae": manifest.sae,
        "source_layer": manifest.source_layer, "downstream_layers": list(manifest.downstream_layers),
        "n_cells": manifest.n_cells, "thresholds": json.dumps(manifest.thresholds, sort_keys=True),
        "created_at": manifest.created_at, "cell_set_digest": manifest.cell_set_digest,
        "code_version": manifest.code_version, "trace_status": manifest.status,
    }


def calibration_properties(manifest: Manifest) -> dict[str, Any]:
    """The Run node's calibration properties (`atlas trace calibrate`); none when the run is not calibrated."""
    summary = manifest.extra.get("calibration", {}).get("summary")
    if summary is None:
        return {}
    permutation = summary["permutation"]
    return {"calibration": json.dumps(summary, sort_keys=True), "calibration_n_perm": permutation["n_perm"],
            "calibration_n_features": permutation["n_features"],
            "calibration_observed_edges": permutation["observed_edges_subset"],
            "calibration_expected_null_edges": permutation["expected_null_edges_subset"],
            "calibration_empirical_fdr": permutation["empirical_fdr_subset"],
            "calibration_estimated_total_edges": permutation["estimated_total_edges_fdr_all_features"]}


def final_status(run: ValidatedRun, loaded: list[str]) -> str:
    """``loaded`` when the trace is complete and every shard is in the graph, else ``partial``."""
    everything = not run.incomplete and {record.file for record in run.shards} <= set(loaded)
    return LOADED if everything and run.manifest.status != "running" else PARTIAL


def loaded_run_properties(run: ValidatedRun) -> dict[str, Any]:
    """The Run node of a run whose every complete shard is loaded: what both loaders leave behind."""
    return {**run_properties(run.manifest), "status": final_status(run, [r.file for r in run.shards]),
            "shards": [record.file for record in run.shards],
            "shard_checksums": [record.sha256 for record in run.shards], "edge_count": run.edge_count,
            "visible": [shard_key(run.run_id, record.file) for record in run.shards]}


def check_identity(run: ValidatedRun, existing: dict[str, Any]) -> None:
    """Refuse to load into a Run node that describes a different run, or whose loaded shards changed since."""
    expected = run_properties(run.manifest)
    for name in IDENTITY:
        if name in existing and existing[name] != expected[name]:
            raise AtlasError(f"run {run.run_id} is already in the graph with {name} = {existing[name]!r}, but "
                             f"{run.run_dir} says {expected[name]!r}; delete it first (atlas ingest --delete "
                             f"{shlex.quote(run.run_id)}) or give the new run another id")
    for name, checksum in zip(existing.get("shards") or [], existing.get("shard_checksums") or [], strict=True):
        record = run.shard(name)
        if record is None or record.sha256 != checksum:
            what = "no longer lists it" if record is None else "has a different checksum for it"
            raise AtlasError(f"run {run.run_id}: shard {name} is loaded, but {run.run_dir} {what}; delete the run "
                             f"(atlas ingest --delete {shlex.quote(run.run_id)}) and load it again")
