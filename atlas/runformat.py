"""The run directory contract (DESIGN.md section 5): ``manifest.json`` plus immutable Parquet edge shards.

This is the only coupling between tracing workers and loaders, so it imports neither torch nor the Neo4j driver.
Writers produce shards atomically (temporary file, fsync, rename) and record each in the manifest with its row
count and SHA-256; readers validate the manifest, every checksum, the column schema and every value before a
single edge is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from atlas.errors import AtlasError
from atlas.files import write_atomically

FORMAT_VERSION = 1
MANIFEST = "manifest.json"

# Edge shard columns (contract). Narrowest types that fit: int16 layers, int32 features and counts, float32 stats.
EDGE_SCHEMA = pa.schema([
    ("run_id", pa.string()),
    ("source_layer", pa.int16()),
    ("source_feature", pa.int32()),
    ("target_layer", pa.int16()),
    ("target_feature", pa.int32()),
    ("d", pa.float32()),
    ("mean", pa.float32()),
    ("std", pa.float32()),
    ("consistency", pa.float32()),
    ("n", pa.int32()),
    ("p", pa.float32()),
])
# After run-level Benjamini-Hochberg finalisation every shard also carries q.
FINAL_EDGE_SCHEMA = EDGE_SCHEMA.append(pa.field("q", pa.float32()))
# After `atlas trace calibrate`: permutation p and its BH q (atlas.trace.calibrate), null where not calibrated.
CALIBRATION_COLUMNS = ("perm_p", "perm_q")

# Where a source feature counts as active: among the SAE encoder's top-k indices (the reference study's code, even
# where ReLU made the value 0), or where its code is positive.
ACTIVE_RULES = ("topk", "positive")

SHARD_COMPLETE = "complete"
RUN_STATUSES = ("running", "complete", "finalized")
# Characters of a run id, model or SAE name. They become index keys (run ids, feature uids, shard marks), and Neo4j
# refuses an index key above about 8 KB with an error that names no input; 200 characters is far from that limit
# even in 4-byte UTF-8 and longer than any real name.
NAME_LIMIT = 200
# Edge keys pack (source feature, target layer, target feature) into one int64 with 8 bits of layer and 24 bits of
# target feature (loaders.runs.edge_keys): a larger value would alias another edge, so it is refused.
LAYER_LIMIT = 1 << 8
FEATURE_LIMIT = 1 << 24
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# The JSON type(s) each manifest and shard-record field must have (None: may be null). Checked on the raw JSON
# before anything else, so a mistyped field is one line naming it; a new optional field adds one row.
MANIFEST_TYPES: dict[str, tuple[type | None, ...]] = {
    "run_id": (str,), "model": (str,), "sae": (str,), "source_layer": (int,), "downstream_layers": (list,),
    "n_cells": (int,), "cell_set_digest": (str,), "thresholds": (dict,), "kind": (str,), "status": (str,),
    "counts": (dict,), "code_version": (str,), "created_at": (str,), "shards": (list,), "extra": (dict,),
    "format_version": (int,), "active": (str,), "model_layers": (int, None), "sae_features": (dict,),
}
SHARD_TYPES: dict[str, tuple[type | None, ...]] = {
    "file": (str,), "rows": (int,), "sha256": (str,), "status": (str,), "source_features": (list, None),
    "cells": (list, None),
}


@dataclass
class ShardRecord:
    """One edge shard as the manifest lists it."""

    file: str
    rows: int
    sha256: str
    status: str = SHARD_COMPLETE
    source_features: list[int] | None = None  # [first, last) source-feature range of the shard
    cells: list[int] | None = None            # [first, last) cell range of the shard


@dataclass
class Manifest:
    """``manifest.json`` of a run directory."""

    run_id: str
    model: str
    sae: str
    source_layer: int
    downstream_layers: list[int]
    n_cells: int
    cell_set_digest: str
    thresholds: dict[str, Any]
    kind: str = "trace"
    status: str = "running"
    counts: dict[str, Any] = field(default_factory=dict)
    code_version: str = ""
    created_at: str = ""
    shards: list[ShardRecord] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    # where a source feature counts as active (atlas.sae.base.ACTIVE_RULES); manifests written before this field
    # existed were traced on positive codes
    active: str = "positive"
    # The model's number of layers and each layer's SAE width ({"5": 4608}): every edge's layers and features must
    # lie within them. Manifests written before these fields existed lack them, and those checks are skipped.
    model_layers: int | None = None
    sae_features: dict[str, int] = field(default_factory=dict)

    @property
    def finalized(self) -> bool:
        return self.status == "finalized"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = MANIFEST) -> Manifest:
        """A manifest from its JSON object, refused in one line naming the first field that is wrong."""
        _check_types(data, cls, MANIFEST_TYPES, source)
        shards = data.get("shards", [])
        for position, shard in enumerate(shards):
            if not isinstance(shard, dict):
                raise AtlasError(f"{source}: shards[{position}] must be a JSON object, got {_json_type(shard)}")
            _check_types(shard, ShardRecord, SHARD_TYPES, f"{source}: shards[{position}]")
        manifest = cls(**{**data, "shards": [ShardRecord(**shard) for shard in shards]})
        manifest.validate(source)
        return manifest

    def validate(self, source: str = MANIFEST) -> None:
        """Refuse a manifest whose fields are missing, mistyped, out of range or inconsistent with each other."""
        if self.format_version != FORMAT_VERSION:
            raise AtlasError(f"{source}: format_version {self.format_version} is not supported "
                             f"(expected {FORMAT_VERSION})")
        for name in ("run_id", "model", "sae"):
            _check_name(source, name, getattr(self, name))
        if self.active not in ACTIVE_RULES:
            raise AtlasError(f"{source}: active {self.active!r} is not one of {', '.join(ACTIVE_RULES)}")
        if self.status not in RUN_STATUSES:
            raise AtlasError(f"{source}: status {self.status!r} is not one of {', '.join(RUN_STATUSES)}")
        for name in ("source_layer", "n_cells"):
            _check_count(source, name, getattr(self, name))
        layers = self.downstream_layers
        if not isinstance(layers, list) or not layers or not all(_is_int(layer) for layer in layers):
            raise AtlasError(f"{source}: downstream_layers must be a non-empty list of integers")
        if any(layer <= self.source_layer for layer in layers):
            raise AtlasError(f"{source}: downstream_layers {layers} must all be after source_layer {self.source_layer}")
        if len(set(layers)) != len(layers):
            raise AtlasError(f"{source}: downstream_layers {layers} lists a layer twice")
        depth = LAYER_LIMIT if self.model_layers is None else self.model_layers
        if self.model_layers is not None and not 0 < self.model_layers <= LAYER_LIMIT:
            raise AtlasError(f"{source}: model_layers must be in 1..{LAYER_LIMIT}, got {self.model_layers!r}")
        if max(layers) >= depth:
            raise AtlasError(f"{source}: downstream layer {max(layers)} is beyond the model's layers 0..{depth - 1}")
        for layer, width in self.sae_features.items():
            if not (layer.isdigit() and _is_int(width) and 0 < width <= FEATURE_LIMIT):
                raise AtlasError(f"{source}: sae_features[{layer!r}] must map a layer number to a width in "
                                 f"1..{FEATURE_LIMIT}, got {width!r}")
        self._validate_shards(source)

    def _validate_shards(self, source: str) -> None:
        names = [shard.file for shard in self.shards]
        if len(names) != len(set(names)):
            raise AtlasError(f"{source}: a shard is listed twice")
        for position, shard in enumerate(self.shards):
            where = f"{source}: shards[{position}]"
            if not shard.file or Path(shard.file).name != shard.file or shard.file.startswith(".") \
                    or _CONTROL.search(shard.file):
                raise AtlasError(f"{where}: file {shard.file!r} must be a plain file name inside the run directory")
            _check_count(where, "rows", shard.rows)
            if not _SHA256.fullmatch(shard.sha256):
                raise AtlasError(f"{where}: sha256 must be 64 lower-case hex digits")
        edges = self.counts.get("edges")
        if edges is not None:
            _check_count(source, "counts.edges", edges)
            listed = sum(shard.rows for shard in self.shards if shard.status == SHARD_COMPLETE)
            everything = self.status != "running" and all(s.status == SHARD_COMPLETE for s in self.shards)
            if everything and edges != listed:
                raise AtlasError(f"{source}: counts.edges is {edges}, but the shards list {listed} rows")

    def layer_width(self, layer: int) -> int:
        """The number of SAE features of ``layer`` (:data:`FEATURE_LIMIT` when the manifest does not say)."""
        return int(self.sae_features.get(str(layer), FEATURE_LIMIT))


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "an integer",
             float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_types(data: dict[str, Any], kind: type, types: dict[str, tuple[type | None, ...]], source: str) -> None:
    """Refuse unknown or missing fields and fields whose JSON type is not the declared one."""
    declared = {item.name: item for item in fields(kind)}
    unknown = sorted(set(data) - set(declared))
    if unknown:
        raise AtlasError(f"{source}: unknown field {unknown[0]!r} (not a Circuit Atlas run manifest?)")
    missing = [name for name, item in declared.items()
               if name not in data and item.default is MISSING and item.default_factory is MISSING]
    if missing:
        raise AtlasError(f"{source}: missing field {missing[0]!r}")
    for name, value in data.items():
        allowed = types.get(name)
        if allowed is None:
            continue
        nullable = None in allowed
        if value is None and nullable:
            continue
        if value is None or isinstance(value, bool) and bool not in allowed or not isinstance(
                value, tuple(kind for kind in allowed if kind is not None)):
            expected = " or ".join(_json_type(kind()) for kind in allowed if kind is not None)
            raise AtlasError(f"{source}: field {name!r} must be {expected}{' or null' if nullable else ''}, "
                             f"got {_json_type(value)}")


def _check_name(source: str, name: str, value: str) -> None:
    if not value.strip():
        raise AtlasError(f"{source}: {name} must be a non-empty string")
    if len(value) > NAME_LIMIT:
        raise AtlasError(f"{source}: {name} is {len(value)} characters long, more than {NAME_LIMIT}")
    if _CONTROL.search(value):
        raise AtlasError(f"{source}: {name} {value!r} contains a control character")


def _check_count(source: str, name: str, value: Any) -> None:
    if not _is_int(value) or value < 0:
        raise AtlasError(f"{source}: {name} must be a non-negative integer, got {value!r}")


def read_manifest(run_dir: Path) -> Manifest:
    """Load and validate ``run_dir/manifest.json``."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise AtlasError(f"{run_dir}: no {MANIFEST} (is this a run directory from `atlas trace`?)")
    try:
        data = json.loads(_read_own_file(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AtlasError(f"{path}: malformed JSON ({error})") from error
    if not isinstance(data, dict):
        raise AtlasError(f"{path}: expected a JSON object")
    return Manifest.from_dict(data, str(path))


def _read_own_file(path: Path) -> bytes:
    """The bytes of a file of the run directory itself: a symbolic link (which could lead anywhere, and be swapped
    between a check and a read) is refused by the open call itself."""
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(handle, "rb") as file:
            return file.read()
    except FileNotFoundError as error:
        raise AtlasError(f"{path}: listed in the manifest but missing") from error
    except OSError as error:
        if Path(path).is_symlink():
            raise AtlasError(f"{path}: is a symbolic link; a run directory must hold its own files") from error
        raise AtlasError(f"{path}: cannot be read ({error.strerror or error})") from error


def write_manifest(run_dir: Path, manifest: Manifest) -> None:
    """Write the manifest atomically."""
    manifest.validate()
    write_atomically(Path(run_dir) / MANIFEST, manifest.to_json().encode("utf-8"), sync=True)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_file_atomically(path: Path, payload: bytes) -> str:
    """Write any run-directory file atomically (temporary file, fsync, rename); return its SHA-256."""
    write_atomically(path, payload, sync=True)
    return hashlib.sha256(payload).hexdigest()


def write_shard(run_dir: Path, name: str, table: pa.Table) -> ShardRecord:
    """Write one edge shard atomically with the contract schema; return its manifest record."""
    schema = _shard_schema(FINAL_EDGE_SCHEMA if "q" in table.column_names else EDGE_SCHEMA, table)
    table = table.select(schema.names).cast(schema)
    path = write_atomically(Path(run_dir) / name, lambda out: pq.write_table(table, out, compression="zstd"),
                            sync=True)
    return ShardRecord(file=name, rows=table.num_rows, sha256=file_sha256(path))


def _shard_schema(base: pa.Schema, table: pa.Table) -> pa.Schema:
    """``base`` plus the calibration columns ``table`` carries."""
    for name in CALIBRATION_COLUMNS:
        if name in table.column_names:
            base = base.append(pa.field(name, pa.float32()))
    return base


def read_shard(run_dir: Path, record: ShardRecord, manifest: Manifest) -> pa.Table:
    """Read one shard after checking its checksum, schema and values; every problem names the file, row and column.

    The bytes are read once (never through a symbolic link), and the checksum and the table come from the same
    bytes, so the file cannot change between the check and the use.
    """
    path = Path(run_dir) / record.file
    if record.status != SHARD_COMPLETE:
        raise AtlasError(f"{path}: shard status is {record.status!r}; an incomplete shard is never ingested")
    payload = _read_own_file(path)
    if hashlib.sha256(payload).hexdigest() != record.sha256:
        raise AtlasError(f"{path}: checksum does not match the manifest (file changed or truncated)")
    return read_edge_table(path, rows=record.rows, manifest=manifest, payload=payload)


def read_edge_table(path: Path, rows: int, manifest: Manifest, payload: bytes | None = None) -> pa.Table:
    """Read a file of a run's edges (a shard, or a release's copy of one; ``payload`` when its bytes are read
    already) and check its schema, row count and values against the manifest; the caller has checked the file's
    integrity. A symbolic link is refused."""
    payload = _read_own_file(path) if payload is None else payload
    try:
        table = pq.read_table(pa.BufferReader(payload))
    except (pa.ArrowInvalid, OSError) as error:
        raise AtlasError(f"{path}: not a readable Parquet file ({error})") from error
    expected = _shard_schema(FINAL_EDGE_SCHEMA if manifest.finalized else EDGE_SCHEMA, table)
    missing = [name for name in expected.names if name not in table.column_names]
    if missing:
        raise AtlasError(f"{path}: missing column(s) {', '.join(missing)}")
    for column in expected:
        actual = table.schema.field(column.name).type
        if actual != column.type:
            raise AtlasError(f"{path}: column {column.name} has type {actual}, expected {column.type}")
    table = table.select(expected.names)
    if table.num_rows != rows:
        raise AtlasError(f"{path}: {table.num_rows} rows but the manifest says {rows}")
    for name in expected.names:
        values = table.column(name)
        if values.null_count and name not in CALIBRATION_COLUMNS:  # those are null where not calibrated
            row = _first_bad(np.asarray(values.is_null().to_numpy(zero_copy_only=False)))
            raise AtlasError(f"{path}: row {row}, column {name}: null where a value is required")
    validate_edges(table, manifest, str(path))
    return table


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def validate_edges(table: pa.Table, manifest: Manifest, source: str) -> None:
    """Refuse NaN/inf statistics, layers, features and counts outside the run (its model, SAE widths and cells),
    probabilities outside [0, 1] and duplicate edges."""
    columns = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    source_width = manifest.layer_width(manifest.source_layer)
    target_widths = np.array([manifest.layer_width(layer) for layer in range(LAYER_LIMIT)], dtype=np.int64)
    target_layers = np.clip(columns["target_layer"].astype(np.int64), 0, LAYER_LIMIT - 1)
    checks = [
        ("run_id", columns["run_id"] != manifest.run_id, f"must equal the manifest run_id {manifest.run_id!r}"),
        ("source_layer", columns["source_layer"] != manifest.source_layer,
         f"must equal the manifest source_layer {manifest.source_layer}"),
        ("target_layer", ~np.isin(columns["target_layer"], manifest.downstream_layers),
         f"must be one of the downstream layers {manifest.downstream_layers}"),
        ("source_feature", columns["source_feature"] < 0, "must be >= 0"),
        ("source_feature", columns["source_feature"] >= source_width,
         f"must be below the source layer's SAE width {source_width}"),
        ("target_feature", columns["target_feature"] < 0, "must be >= 0"),
        ("target_feature", columns["target_feature"] >= target_widths[target_layers],
         "must be below its layer's SAE width "
         f"{ {int(layer): manifest.layer_width(layer) for layer in manifest.downstream_layers} }"),
        ("n", columns["n"] < 1, "must be >= 1"),
        ("n", columns["n"] > manifest.n_cells, f"must be at most the run's {manifest.n_cells} cells"),
    ]
    for stat in ("d", "mean", "std", "consistency", "p") + (("q",) if "q" in columns else ()):
        checks.append((stat, ~np.isfinite(columns[stat]), "must be a finite number (NaN or inf found)"))
    checks += [
        ("std", columns["std"] < 0, "must be >= 0"),
        ("consistency", (columns["consistency"] < 0) | (columns["consistency"] > 1), "must be in [0, 1]"),
        ("p", (columns["p"] < 0) | (columns["p"] > 1), "must be in [0, 1]"),
    ]
    if "q" in columns:
        checks.append(("q", (columns["q"] < 0) | (columns["q"] > 1), "must be in [0, 1]"))
    for name in CALIBRATION_COLUMNS:
        if name in columns:  # null (NaN here) on edges of uncalibrated features
            calibrated = table.column(name).is_valid().to_numpy(zero_copy_only=False)
            checks.append((name, calibrated & ~((columns[name] > 0) & (columns[name] <= 1)),
                           "must be in (0, 1] or null"))
    for column, mask, rule in checks:
        row = _first_bad(np.asarray(mask))
        if row is not None:
            value = columns[column][row]
            value = value.item() if isinstance(value, np.generic) else value  # 'nan', not 'np.float32(nan)'
            raise AtlasError(f"{source}: row {row}, column {column}: {value!r} {rule}")
    # One int64 per edge: 31 bits of source feature, 8 bits of layer, 24 bits of target feature (all in range now).
    keys = (columns["source_feature"].astype(np.int64) << 32) | (
        (columns["target_layer"].astype(np.int64) << 24) + columns["target_feature"].astype(np.int64))
    _, first_index, counts = np.unique(keys, return_index=True, return_counts=True)
    if (counts > 1).any():
        row = int(np.sort(first_index[counts > 1])[0])
        raise AtlasError(f"{source}: row {row}: duplicate edge ({columns['source_feature'][row]} -> "
                         f"L{columns['target_layer'][row]}/{columns['target_feature'][row]})")
