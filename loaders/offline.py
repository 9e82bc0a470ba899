"""The offline bulk path for a fresh atlas: ``neo4j-admin database import full`` files from runs and annotations.

:func:`write_import_files` turns validated runs and :class:`~loaders.annotations.AnnotationRows` into one header
file and one data file per label and relationship type, typed from :mod:`loaders.schema` (the same declaration
the online loader and the constraints use; AFFECTS statistics keep the run format's float32), with the rows of
:mod:`loaders.runs` and :mod:`loaders.annotations`.
Nodes are numbered per label (``--id-type=integer``): edges name their endpoints by number, computed from the
shards' feature columns without formatting a uid per edge. :func:`bulk_import` then stops the managed server,
imports into the ``neo4j`` database (Community Edition has one user database, so importing means replacing it:
refused when it is not empty unless forced), starts the server again and applies the schema. The resulting graph
is the one the online loaders build from the same inputs. While it imports, the import holds the instance (see
:mod:`atlas.db.offline_import`), so a kill at any point never leaves a half-written database served.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

import queries
from atlas.db import server
from atlas.db.offline_import import DATABASE, OfflineImportClaim
from atlas.errors import AtlasError
from atlas.runformat import CALIBRATION_COLUMNS, FINAL_EDGE_SCHEMA
from loaders.annotations import AnnotationRows
from loaders.runs import (
    STATISTICS,
    ValidatedRun,
    edge_endpoints,
    edge_signs,
    feature_keys,
    feature_rows,
    loaded_run_properties,
)
from loaders.schema import (
    AFFECTS,
    ENRICHED_IN,
    FEATURE,
    GENE,
    MEMBER_OF,
    RUN,
    TERM,
    TOP_GENE,
    NodeType,
    RelationshipType,
    shard_key,
)

ARRAY_DELIMITER = ";"
# schema type -> (neo4j-admin import type, Arrow type of the column before it becomes text)
_TYPES = {
    "str": ("string", pa.string()), "int": ("long", pa.int64()), "float": ("double", pa.float64()),
    "bool": ("boolean", pa.bool_()), "int[]": ("long[]", pa.list_(pa.int64())),
    "str[]": ("string[]", pa.list_(pa.string())),
}
# The shards' float32 statistics go into the files as float32 text (the shortest form that reads back as the same
# float32) under the type `float`, stored as float32 (--normalize-types=false: normalising parses the text again as a
# double, 0.95 instead of 0.949999988...). Cypher reads a stored float32 as the same double the online loader
# writes (its widening), from half the text of a double, parsed faster (benchmarks/README.md, "Offline import").
_SHARD_FLOATS = {name: ("float", pa.float32()) for name in
                 [field.name for field in FINAL_EDGE_SCHEMA if field.type == pa.float32()] + list(CALIBRATION_COLUMNS)}


@dataclass
class ImportFiles:
    """The files of one import: ``--nodes`` and ``--relationships`` arguments and the rows each holds."""

    directory: Path
    nodes: dict[str, list[Path]] = field(default_factory=dict)
    relationships: dict[str, list[Path]] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    multiline: list[Path] = field(default_factory=list)  # data files with a line break inside a value

    def arguments(self) -> list[str]:
        """The neo4j-admin arguments naming every file (and, to keep parsing parallel, only those multiline)."""
        nodes = [f"--nodes={label}={','.join(map(str, paths))}" for label, paths in self.nodes.items()]
        relationships = [f"--relationships={kind}={','.join(map(str, paths))}"
                         for kind, paths in self.relationships.items()]
        multiline = (["--multiline-fields-format=v2", f"--multiline-fields={','.join(map(str, self.multiline))}"]
                     if self.multiline else [])
        return nodes + relationships + multiline


def _text(values: pa.Array) -> pa.Array:
    """A column ready for the CSV writer: arrays joined by the array delimiter, infinities spelled the way Java
    parses them; finite numbers stay numbers (written unquoted, in their shortest round-trip form)."""
    if pa.types.is_list(values.type):
        joined = pc.binary_join(values.cast(pa.list_(pa.string())), ARRAY_DELIMITER)
        return pc.if_else(pc.is_null(values), pa.scalar(None, pa.string()), joined)
    if pa.types.is_floating(values.type) and pc.any(pc.is_inf(values)).as_py():
        return pc.replace_substring_regex(pc.replace_substring_regex(values.cast(pa.string()), "^inf$", "Infinity"),
                                          "^-inf$", "-Infinity")
    return values


def _has_line_break(text: pa.Array) -> bool:
    """Whether a string column holds a line break (searched in its value bytes: far cheaper than per value)."""
    if not pa.types.is_string(text.type) or text.buffers()[2] is None:
        return False
    values = text.buffers()[2].to_pybytes()
    return b"\n" in values or b"\r" in values


def _array(values: Any, type: pa.DataType) -> pa.Array:
    """One column as an Arrow array of ``type``, from a list, a NumPy array or an Arrow (chunked) array."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.cast(type) if isinstance(values, pa.Array) else pa.array(values, type)


class _CsvFile:
    """One data file of an import, written in chunks with typed columns; its header goes to a separate file."""

    def __init__(self, directory: Path, name: str, header: list[str], columns: list[tuple[str, pa.DataType]]):
        self.header_path = directory / f"{name}.header.csv"
        self.data_path = directory / f"{name}.csv"
        self.header_path.write_text(",".join(header) + "\n", encoding="utf-8")
        self.columns = columns
        self.rows = 0
        self.multiline = False
        self._writer: pcsv.CSVWriter | None = None

    def write(self, data: dict[str, Any]) -> None:
        """Append rows given as ``column -> values`` (lists or arrays); missing or None columns are empty (no
        property)."""
        length = len(next(iter(data.values())))
        arrays = [_text(_array(data[name], type) if data.get(name) is not None else pa.nulls(length, type))
                  for name, type in self.columns]
        self.multiline = self.multiline or any(_has_line_break(array) for array in arrays)
        table = pa.table(arrays, names=[f"c{i}" for i in range(len(arrays))])
        if self._writer is None:
            self._writer = pcsv.CSVWriter(self.data_path, table.schema,
                                          write_options=pcsv.WriteOptions(include_header=False,
                                                                          quoting_style="needed"))
        self._writer.write_table(table)
        self.rows += length

    def close(self) -> list[Path]:
        if self._writer is None:
            self.data_path.write_text("", encoding="utf-8")
        else:
            self._writer.close()
        return [self.header_path, self.data_path]


# Nodes are named in the files by integer ids (their row number, not stored: --id-type=integer), so relationship
# endpoints are plain numbers the importer looks up without hashing strings; each key property is an ordinary column.
NODE_ID, SOURCE, TARGET = ":node", ":source", ":target"


def _node_file(directory: Path, node: NodeType) -> _CsvFile:
    header, columns = [f":ID({node.label})"], [(NODE_ID, pa.int64())]
    for name, kind in node.properties.items():
        admin_type, arrow_type = _TYPES[kind]
        header.append(f"{name}:{admin_type}")
        columns.append((name, arrow_type))
    return _CsvFile(directory, node.label, header, columns)


def _relationship_file(directory: Path, relationship: RelationshipType,
                       types: dict[str, tuple[str, pa.DataType]] | None = None) -> _CsvFile:
    """The file of one relationship type; ``types`` overrides the schema's column types (import type, Arrow type)."""
    header = [f":START_ID({relationship.source})", f":END_ID({relationship.target})"]
    columns = [(SOURCE, pa.int64()), (TARGET, pa.int64())]
    for name, kind in relationship.properties.items():
        admin_type, arrow_type = (types or {}).get(name) or _TYPES[kind]
        header.append(f"{name}:{admin_type}")
        columns.append((name, arrow_type))
    return _CsvFile(directory, relationship.type, header, columns)


def _columns(rows: Iterable[dict[str, Any]], names: Iterable[str]) -> dict[str, list[Any]]:
    rows = list(rows)
    return {name: [row.get(name) for row in rows] for name in names}


def _pairs(relationships: dict[tuple[str, str], dict[str, Any]], names: Iterable[str],
           source_ids: dict[str, int], target_ids: dict[str, int]) -> dict[str, list[Any]]:
    rows = [{SOURCE: source_ids[source], TARGET: target_ids[target], **properties}
            for (source, target), properties in relationships.items()]
    return _columns(rows, [SOURCE, TARGET, *names])


def _features(runs: list[ValidatedRun], annotations: AnnotationRows) -> list[dict[str, Any]]:
    """Features of the runs' edges, completed by the catalogs' properties (what loading both online gives)."""
    features: dict[str, dict[str, Any]] = {}
    for run in runs:
        for row in feature_rows(run):
            features.setdefault(row["uid"], row)
        for row in run.calibration:
            features[row["uid"]].update(row)
    for uid, row in annotations.features.items():
        features[uid] = {**features.get(uid, {}), **row}
    return list(features.values())


def _affects(run: ValidatedRun, feature_ids: dict[str, int]) -> Iterable[tuple[int, dict[str, Any]]]:
    """The AFFECTS columns of each shard of a run (endpoints as node ids, statistics as the shard stores them; an
    absent column is None), and the shard's edge count."""
    keys = feature_keys(run.features[:, 0], run.features[:, 1])  # sorted: validate_run keeps them unique
    node_ids = np.array([feature_ids[row["uid"]] for row in feature_rows(run)], dtype=np.int64)
    for record in run.shards:
        table = run.read(record)
        sources, targets = edge_endpoints(run.manifest, table)
        statistics = {name: table.column(name) if name in table.column_names else None for name in STATISTICS}
        yield record.rows, {SOURCE: node_ids[np.searchsorted(keys, sources)],
                            TARGET: node_ids[np.searchsorted(keys, targets)],
                            "run": pa.repeat(pa.scalar(run.run_id), record.rows),
                            "shard": pa.repeat(pa.scalar(shard_key(run.run_id, record.file)), record.rows),
                            **statistics, "sign": edge_signs(statistics["mean"].to_numpy())}


def _read_ahead(items: Iterator[Any]) -> Iterator[Any]:
    """The items of ``items``, the next one produced by a thread while the caller uses this one (a shard is read and
    numbered while the previous one is written: Parquet, NumPy and the CSV writer all work outside the GIL)."""
    end = object()
    with ThreadPoolExecutor(1) as worker:
        pending = worker.submit(next, items, end)
        while (item := pending.result()) is not end:
            pending = worker.submit(next, items, end)
            yield item


def write_import_files(
    directory: str | Path,
    runs: list[ValidatedRun],
    annotations: AnnotationRows | None = None,
    progress: Callable[[int], None] | None = None,
) -> ImportFiles:
    """Write the import files of these runs and annotations into ``directory`` (emptied first).

    Run nodes come out as the online loader leaves a fully loaded run; ``progress`` gets edges written per shard.
    """
    annotations = annotations or AnnotationRows()
    directory = Path(directory)
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    files = ImportFiles(directory)

    def finish(kind: str, name: str, csv_file: _CsvFile) -> None:
        getattr(files, kind)[name] = csv_file.close()
        files.rows[name] = csv_file.rows
        if csv_file.multiline:
            files.multiline.append(csv_file.data_path)

    node_ids: dict[str, dict[str, int]] = {}
    node_data = [
        (FEATURE, _features(runs, annotations)), (GENE, list(annotations.genes.values())),
        (TERM, list(annotations.terms.values())), (RUN, [loaded_run_properties(run) for run in runs]),
    ]
    for node, rows in node_data:
        csv_file = _node_file(directory, node)
        node_ids[node.label] = {row[node.key]: position for position, row in enumerate(rows)}
        if rows:
            csv_file.write({NODE_ID: np.arange(len(rows)), **_columns(rows, node.properties)})
        finish("nodes", node.label, csv_file)

    affects = _relationship_file(directory, AFFECTS, _SHARD_FLOATS)
    for edges, columns in _read_ahead(edge for run in runs for edge in _affects(run, node_ids[FEATURE.label])):
        affects.write(columns)
        if progress is not None:
            progress(edges)
    finish("relationships", AFFECTS.type, affects)

    for relationship, pairs in ((TOP_GENE, annotations.top_genes), (ENRICHED_IN, annotations.enriched_in),
                                (MEMBER_OF, annotations.member_of)):
        csv_file = _relationship_file(directory, relationship)
        if pairs:
            csv_file.write(_pairs(pairs, relationship.properties, node_ids[relationship.source],
                                  node_ids[relationship.target]))
        finish("relationships", relationship.type, csv_file)
    return files


@dataclass
class BulkImportReport:
    """What an offline import did and how long each phase took."""

    rows: dict[str, int]
    edges: int
    seconds_write_files: float
    seconds_stop: float
    seconds_import: float  # the neo4j-admin process, JVM start to exit
    seconds_start: float
    seconds_schema: float
    import_directory: str

    @property
    def seconds(self) -> float:
        return (self.seconds_write_files + self.seconds_stop + self.seconds_import + self.seconds_start
                + self.seconds_schema)

    @property
    def edges_per_second(self) -> float:
        return self.edges / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {**vars(self), "seconds": round(self.seconds, 3), "edges_per_second": round(self.edges_per_second, 1)}


def refuse_non_empty(claim: OfflineImportClaim, force: bool, alternative: str) -> None:
    """Before replacing the managed database: start the server (unless an interrupted import left the database
    half-written, which is replaced without asking) and refuse, unless ``force``, a database that holds any node;
    ``alternative`` says what else to do."""
    from atlas.db.connection import connect

    if claim.interrupted is not None:
        return
    config = server.start(server.ServerConfig.from_env())
    with connect() as graph:
        nodes = graph.read(queries.internal("database_node_count").text)[0]["nodes"]
    if nodes and not force:
        raise AtlasError(f"database '{DATABASE}' on {config.bolt_uri} is not empty ({nodes:,} nodes); {alternative}")


def restore_dump(dump_directory: Path, force: bool) -> None:
    """Replace the managed ``neo4j`` database by the ``neo4j.dump`` in ``dump_directory`` (``neo4j-admin database
    load``; the server is stopped meanwhile and started after), holding the offline import's claim."""
    if os.environ.get("NEO4J_URI"):
        raise AtlasError("a dump restores into the managed server only; unset NEO4J_URI, or load without --dump")
    config = server.ServerConfig.from_env()
    log = config.home / "logs" / "dump-load.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with OfflineImportClaim(config.home, [str(dump_directory)]) as claim:
        refuse_non_empty(claim, force, "a dump replaces it entirely: pass --force to replace it, or load without "
                                       "--dump")
        claim.replace(["database", "load", DATABASE, f"--from-path={dump_directory}", "--overwrite-destination=true"],
                      log, "neo4j-admin database load")


def bulk_import(
    runs: list[ValidatedRun],
    annotations: AnnotationRows | None = None,
    *,
    force: bool = False,
    directory: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> BulkImportReport:
    """Replace the managed server's ``neo4j`` database by an import of these runs and annotations.

    Refused against a remote server (NEO4J_URI) and, unless ``force``, when the database holds any node. The
    server is stopped for the import and started again; the schema (constraints, indexes) is applied after. The
    import holds :class:`~atlas.db.offline_import.OfflineImportClaim`: a database an interrupted import left
    half-written is replaced without asking (its orphan importer stopped first), and one a failed import left is
    emptied.
    """
    from atlas.db.connection import connect
    from loaders.schema import apply_schema

    if os.environ.get("NEO4J_URI"):
        raise AtlasError("the offline import runs against the managed server only; unset NEO4J_URI, or load a "
                         "remote server with the online loader (atlas ingest without --offline)")
    if os.environ.get("NEO4J_DATABASE", DATABASE) != DATABASE:
        raise AtlasError(f"the offline import replaces database '{DATABASE}' (Community Edition has one user "
                         "database); unset NEO4J_DATABASE")
    config = server.ServerConfig.from_env()
    with OfflineImportClaim(config.home, [str(run.run_dir) for run in runs]) as claim:
        refuse_non_empty(claim, force, "the offline import replaces it entirely: pass --force to replace it, or "
                                       "use the online loader")
        started = time.perf_counter()
        files = write_import_files(Path(directory) if directory else config.home / "import" / "bulk", runs,
                                   annotations, progress)
        written = time.perf_counter()
        # The database name goes first: --nodes and --relationships take any number of values and would swallow it.
        arguments = ["database", "import", "full", DATABASE, "--overwrite-destination=true", "--id-type=integer",
                     "--normalize-types=false",  # see _SHARD_FLOATS
                     f"--array-delimiter={ARRAY_DELIMITER}", f"--report-file={files.directory / 'import.report'}",
                     *files.arguments()]
        seconds_stop, seconds_import, seconds_start = claim.replace(arguments, files.directory / "neo4j-admin.log",
                                                                    "neo4j-admin import")
    restarted = time.perf_counter()
    with connect() as graph:
        apply_schema(graph)
    finished = time.perf_counter()
    return BulkImportReport(files.rows, files.rows[AFFECTS.type], written - started, seconds_stop, seconds_import,
                            seconds_start, finished - restarted, str(files.directory))
