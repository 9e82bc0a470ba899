"""Check a release directory against its ``release.json``: format, checksums, tables, schemas and counts.

Nothing is written; every problem is one line naming the file. A release that passes loads without surprises
(the edge values are checked again when they are read for loading).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from atlas.errors import AtlasError
from atlas.releaseformat import (
    FEATURES_DIR,
    FORMAT,
    FORMAT_VERSION,
    RELEASE_JSON,
    TABLES,
    edges_path,
    read_release_json,
    table_path,
)
from atlas.runformat import EDGE_SCHEMA, Manifest, file_sha256

_KINDS = {"str": pa.types.is_string, "int": pa.types.is_integer, "float": pa.types.is_floating,
          "bool": pa.types.is_boolean}


def _safe(relative: str) -> bool:
    path = PurePosixPath(relative)
    return not path.is_absolute() and ".." not in path.parts and relative != RELEASE_JSON


def _check_files(directory: Path, files: dict[str, str]) -> list[str]:
    problems = []
    for relative, checksum in sorted(files.items()):
        path = directory / relative
        if not _safe(relative):
            problems.append(f"{relative}: not a path inside the release")
        elif not path.is_file():
            problems.append(f"{relative}: listed in {RELEASE_JSON} but missing")
        elif file_sha256(path) != checksum:
            problems.append(f"{relative}: checksum does not match {RELEASE_JSON} (file changed or truncated)")
    listed = set(files)
    on_disk = {path.relative_to(directory).as_posix() for path in directory.rglob("*") if path.is_file()}
    problems += [f"{relative}: not listed in {RELEASE_JSON}" for relative in sorted(on_disk - listed - {RELEASE_JSON})]
    return problems


def _check_columns(relative: str, schema: pa.Schema, required: dict[str, str]) -> list[str]:
    problems = []
    for name, kind in required.items():
        if name not in schema.names:
            problems.append(f"{relative}: missing column {name}")
        elif not (_KINDS[kind](schema.field(name).type) or pa.types.is_null(schema.field(name).type)):
            problems.append(f"{relative}: column {name} has type {schema.field(name).type}, expected {kind}")
    return problems


def _check_parquet(directory: Path, relative: str, present: set[str], missing: str, required: dict[str, str],
                   expected_rows: int | None, row_claim: str) -> list[str]:
    """The problems of one Parquet file the release lists: absent (``missing`` says what), unreadable, a column
    absent or of another kind, or a row count other than ``expected_rows`` (``row_claim`` says who claims it)."""
    if relative not in present:
        return [f"{relative}: {missing}"]
    try:
        metadata = pq.read_metadata(directory / relative)
    except (pa.ArrowInvalid, OSError) as error:
        return [f"{relative}: not a readable Parquet file ({error})"]
    problems = _check_columns(relative, metadata.schema.to_arrow_schema(), required)
    if metadata.num_rows != expected_rows:
        problems.append(f"{relative}: {metadata.num_rows} {row_claim}")
    return problems


def _check_tables(directory: Path, release: dict[str, Any], present: set[str]) -> list[str]:
    problems = []
    counts = release.get("counts") or {}
    for name, required in TABLES.items():
        problems += _check_parquet(directory, table_path(name), present, f"table {name} is missing", required,
                                   counts.get(name), f"rows but {RELEASE_JSON} counts {counts.get(name)}")
    return problems


def _check_runs(directory: Path, release: dict[str, Any], present: set[str]) -> list[str]:
    problems = []
    required = {field.name: "int" if pa.types.is_integer(field.type) else
                "float" if pa.types.is_floating(field.type) else "str" for field in EDGE_SCHEMA}
    for entry in release.get("runs") or []:
        try:
            manifest = Manifest.from_dict(entry["manifest"], f"{RELEASE_JSON} run {entry.get('id')!r}")
        except (AtlasError, KeyError, TypeError) as error:
            problems.append(f"{RELEASE_JSON}: run {entry.get('id')!r} has no valid manifest ({error})")
            continue
        for record in manifest.shards:
            problems += _check_parquet(directory, edges_path(manifest.run_id, record.file), present,
                                       f"edges of run {manifest.run_id} are missing", required, record.rows,
                                       f"edges but the run's manifest says {record.rows}")
    if not release.get("runs"):
        problems.append(f"{RELEASE_JSON}: no runs")
    return problems


def verify_release(directory: str | Path) -> list[str]:
    """Every problem of the release at ``directory``, one line each (empty when it is sound)."""
    directory = Path(directory)
    try:
        release = read_release_json(directory)
    except AtlasError as error:
        return [str(error)]
    if release.get("format") != FORMAT or release.get("format_version") != FORMAT_VERSION:
        return [f"{RELEASE_JSON}: format {release.get('format')!r} version {release.get('format_version')!r} is "
                f"not supported (expected {FORMAT!r} version {FORMAT_VERSION})"]
    files = release.get("files")
    if not isinstance(files, dict):
        return [f"{RELEASE_JSON}: no file list with checksums"]
    problems = _check_files(directory, files)
    present = {relative for relative in files if _safe(relative) and (directory / relative).is_file()}
    problems += _check_tables(directory, release, present)
    problems += _check_runs(directory, release, present)
    documents = sum(1 for relative in present if relative.startswith(f"{FEATURES_DIR}/"))
    if documents != (release.get("counts") or {}).get("documents"):
        problems.append(f"{FEATURES_DIR}/: {documents} feature documents but {RELEASE_JSON} counts "
                        f"{(release.get('counts') or {}).get('documents')}")
    if release.get("dump") and release["dump"] not in present:
        problems.append(f"{release['dump']}: the dump {RELEASE_JSON} names is missing")
    return problems
