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
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from atlas.errors import AtlasError

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

    @property
    def finalized(self) -> bool:
        return self.status == "finalized"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = MANIFEST) -> Manifest:
        try:
            shards = [ShardRecord(**shard) for shard in data.get("shards", [])]
            manifest = cls(**{**data, "shards": shards})
        except TypeError as error:
            raise AtlasError(f"{source}: not a Circuit Atlas run manifest ({error})") from error
        manifest.validate(source)
        return manifest

    def validate(self, source: str = MANIFEST) -> None:
        """Refuse a manifest whose fields are missing, mistyped or inconsistent."""
        if self.format_version != FORMAT_VERSION:
            raise AtlasError(f"{source}: format_version {self.format_version} is not supported "
                             f"(expected {FORMAT_VERSION})")
        if not isinstance(self.run_id, str) or not self.run_id.strip():
            raise AtlasError(f"{source}: run_id must be a non-empty string")
        if self.active not in ACTIVE_RULES:
            raise AtlasError(f"{source}: active {self.active!r} is not one of {', '.join(ACTIVE_RULES)}")
        if self.status not in RUN_STATUSES:
            raise AtlasError(f"{source}: status {self.status!r} is not one of {', '.join(RUN_STATUSES)}")
        for name in ("source_layer", "n_cells"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise AtlasError(f"{source}: {name} must be a non-negative integer, got {value!r}")
        layers = self.downstream_layers
        if not isinstance(layers, list) or not layers or not all(isinstance(layer, int) for layer in layers):
            raise AtlasError(f"{source}: downstream_layers must be a non-empty list of integers")
        if any(layer <= self.source_layer for layer in layers):
            raise AtlasError(f"{source}: downstream_layers {layers} must all be after source_layer {self.source_layer}")
        names = [shard.file for shard in self.shards]
        if len(names) != len(set(names)):
            raise AtlasError(f"{source}: a shard is listed twice")


def read_manifest(run_dir: Path) -> Manifest:
    """Load and validate ``run_dir/manifest.json``."""
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise AtlasError(f"{run_dir}: no {MANIFEST} (is this a run directory from `atlas trace`?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AtlasError(f"{path}: malformed JSON ({error})") from error
    if not isinstance(data, dict):
        raise AtlasError(f"{path}: expected a JSON object")
    return Manifest.from_dict(data, str(path))


def write_manifest(run_dir: Path, manifest: Manifest) -> None:
    """Write the manifest atomically."""
    manifest.validate()
    _atomic_write(Path(run_dir) / MANIFEST, manifest.to_json().encode("utf-8"))


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _atomic_write(path: Path, payload: bytes) -> None:
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_file_atomically(path: Path, payload: bytes) -> str:
    """Write any run-directory file atomically (temporary file, fsync, rename); return its SHA-256."""
    _atomic_write(Path(path), payload)
    return hashlib.sha256(payload).hexdigest()


def write_shard(run_dir: Path, name: str, table: pa.Table) -> ShardRecord:
    """Write one edge shard atomically with the contract schema; return its manifest record."""
    schema = _shard_schema(FINAL_EDGE_SCHEMA if "q" in table.column_names else EDGE_SCHEMA, table)
    table = table.select(schema.names).cast(schema)
    path = Path(run_dir) / name
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=run_dir)
    os.close(handle)
    try:
        pq.write_table(table, temporary, compression="zstd")
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return ShardRecord(file=name, rows=table.num_rows, sha256=file_sha256(path))


def _shard_schema(base: pa.Schema, table: pa.Table) -> pa.Schema:
    """``base`` plus the calibration columns ``table`` carries."""
    for name in CALIBRATION_COLUMNS:
        if name in table.column_names:
            base = base.append(pa.field(name, pa.float32()))
    return base


def read_shard(run_dir: Path, record: ShardRecord, manifest: Manifest) -> pa.Table:
    """Read one shard after checking its checksum, schema and values; every problem names the file, row and column."""
    path = Path(run_dir) / record.file
    if record.status != SHARD_COMPLETE:
        raise AtlasError(f"{path}: shard status is {record.status!r}; an incomplete shard is never ingested")
    if not path.is_file():
        raise AtlasError(f"{path}: listed in the manifest but missing")
    if file_sha256(path) != record.sha256:
        raise AtlasError(f"{path}: checksum does not match the manifest (file changed or truncated)")
    try:
        table = pq.read_table(path)
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
    if table.num_rows != record.rows:
        raise AtlasError(f"{path}: {table.num_rows} rows but the manifest says {record.rows}")
    validate_edges(table, manifest, str(path))
    return table


def _first_bad(mask: np.ndarray) -> int | None:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if bad.size else None


def validate_edges(table: pa.Table, manifest: Manifest, source: str) -> None:
    """Refuse NaN/inf statistics, out-of-range layers, features, counts and probabilities, and duplicate edges."""
    columns = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    checks = [
        ("run_id", columns["run_id"] != manifest.run_id, f"must equal the manifest run_id {manifest.run_id!r}"),
        ("source_layer", columns["source_layer"] != manifest.source_layer,
         f"must equal the manifest source_layer {manifest.source_layer}"),
        ("target_layer", ~np.isin(columns["target_layer"], manifest.downstream_layers),
         f"must be one of the downstream layers {manifest.downstream_layers}"),
        ("source_feature", columns["source_feature"] < 0, "must be >= 0"),
        ("target_feature", columns["target_feature"] < 0, "must be >= 0"),
        ("n", columns["n"] < 1, "must be >= 1"),
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
    # One int64 per edge: 31 bits of source feature, 8 bits of layer, 24 bits of target feature.
    keys = (columns["source_feature"].astype(np.int64) << 32) | (
        (columns["target_layer"].astype(np.int64) << 24) + columns["target_feature"].astype(np.int64))
    _, first_index, counts = np.unique(keys, return_index=True, return_counts=True)
    if (counts > 1).any():
        row = int(np.sort(first_index[counts > 1])[0])
        raise AtlasError(f"{source}: row {row}: duplicate edge ({columns['source_feature'][row]} -> "
                         f"L{columns['target_layer'][row]}/{columns['target_feature'][row]})")
