"""Publish an atlas: chosen runs' visible edges, the annotations of their features and experiment results, as a
release directory (:mod:`atlas.releaseformat`), optionally with a Neo4j dump and as one ``.tar`` file.

Everything is read from the graph in read transactions; edges only from shards visible now (the shard fence), so a
release made while a load runs holds whole shards only.
"""

from __future__ import annotations

import json
import os
import tarfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

import queries
from atlas.db import server
from atlas.db.connection import Graph
from atlas.db.offline_import import DATABASE
from atlas.errors import AtlasError
from atlas.progress import StageProgress
from atlas.releaseformat import (
    DUMP_DIR,
    DUMP_FILE,
    FORMAT,
    FORMAT_VERSION,
    RELEASE_JSON,
    TABLES,
    document_path,
    edges_path,
    table_path,
)
from atlas.runformat import Manifest, ShardRecord, file_sha256, write_shard
from atlas.version import __version__
from loaders.annotations import catalog_rows
from loaders.online import run_state
from loaders.schema import shard_key

_ARROW = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
# AFFECTS properties that the run format does not store per edge (the run, the shard, the sign from the mean).
_DERIVED = ("run", "shard", "sign")
DEFINITIONS = {
    "d": "Cohen's d of the ablation effect over cells: mean / sample std",
    "consistency": "share of cells agreeing in sign (the run's thresholds name the definition used)",
    "p": "one-sample t-test p-value (t = d * sqrt(n), df = n - 1)",
    "q": "run-level Benjamini-Hochberg q-value (absent before finalisation)",
    "sign": "excitatory when mean > 0, else inhibitory",
}


def _read(graph: Graph, name: str, **parameters: Any) -> list[dict[str, Any]]:
    return graph.read(queries.internal(name).text, **parameters)


def _table(rows: list[dict[str, Any]], required: dict[str, str]) -> pa.Table:
    """Rows of properties as a table: the required columns first, typed, then every other property by name."""
    names = list(required) + sorted({name for row in rows for name in row} - set(required))
    arrays = [pa.array([row.get(name) for row in rows], _ARROW[required[name]] if name in required else None)
              for name in names]
    return pa.table(arrays, names=names)


def _run_entry(graph: Graph, run_id: str, out: Path, progress: StageProgress) -> dict[str, Any]:
    """Write one run's visible edges (a file per shard) and return its release.json entry with its manifest."""
    if not run_id or "/" in run_id or run_id in (".", ".."):
        raise AtlasError(f"run id {run_id!r} cannot name a release folder")
    state = run_state(graph, run_id)
    if state is None or not state.get("shards"):
        known = ", ".join(row["id"] for row in graph.read(queries.internal("known_runs").text)) or "none"
        raise AtlasError(f"no traced run {run_id!r} with loaded edges in the atlas (known runs: {known})")
    visible = set(state.get("visible") or [])
    records = []
    (out / edges_path(run_id, "")).mkdir(parents=True, exist_ok=True)
    shards = [(shard, checksum) for shard, checksum in zip(state["shards"], state["shard_checksums"], strict=True)
              if shard_key(run_id, shard) in visible]
    for done, (shard, checksum) in enumerate(shards, start=1):
        rows = _read(graph, "release_shard_edges", run=run_id, key=shard_key(run_id, shard))
        columns = {"run_id": [run_id] * len(rows), "source_layer": [state["source_layer"]] * len(rows),
                   **{name: [row[name] for row in rows]
                      for name in ("source_feature", "target_layer", "target_feature")}}
        statistics = sorted({name for row in rows for name in row["properties"]} - set(_DERIVED))
        columns.update({name: [row["properties"].get(name) for row in rows] for name in statistics})
        write_shard(out / edges_path(run_id, ""), shard, pa.table(columns))
        # The shard keeps its trace record: a Run node loaded from the release lists the same checksums.
        records.append(ShardRecord(file=shard, rows=len(rows), sha256=checksum))
        progress(f"edges of {run_id}", done, len(shards))
    manifest = Manifest(
        run_id=run_id, model=state["model"], sae=state["sae"], source_layer=state["source_layer"],
        downstream_layers=list(state["downstream_layers"]), n_cells=state["n_cells"],
        cell_set_digest=state.get("cell_set_digest") or "", thresholds=json.loads(state.get("thresholds") or "{}"),
        kind=state.get("kind") or "trace", status=state.get("trace_status") or "complete",
        counts={"edges": sum(record.rows for record in records)}, code_version=state.get("code_version") or "",
        created_at=state.get("created_at") or "", shards=records,
        # the Run node keeps a calibrated run's summary as JSON text; its manifest entry gives the same properties
        extra={"calibration": {"summary": json.loads(state["calibration"])}} if state.get("calibration") else {})
    return {"id": run_id, "manifest": asdict(manifest), "edges": manifest.counts["edges"]}


def _annotation_tables(graph: Graph, pairs: list[list[str]], sae_atlas: Path | None) -> dict[str, pa.Table]:
    """Features of the runs' model and SAE set with their links, genes and terms (a catalog fills features the
    graph lacks)."""
    features = {row["properties"]["uid"]: row["properties"] for row in _read(graph, "release_features", pairs=pairs)}
    genes = {row["properties"]["id"]: row["properties"] for row in _read(graph, "release_genes")}
    terms = {row["properties"]["id"]: row["properties"] for row in _read(graph, "release_terms")}
    links = _read(graph, "release_feature_links", pairs=pairs)
    top_genes = {(row["feature"], row["target"]): row["properties"] for row in links if row["type"] == "TOP_GENE"}
    enriched = {(row["feature"], row["target"]): row["properties"] for row in links if row["type"] == "ENRICHED_IN"}
    if sae_atlas is not None:
        from atlas.catalog import read_catalogs

        catalogs = read_catalogs(sae_atlas).values()
        for model, sae in pairs:
            rows = catalog_rows(catalogs, model, sae)
            for mine, theirs in ((features, rows.features), (genes, rows.genes), (terms, rows.terms),
                                 (top_genes, rows.top_genes), (enriched, rows.enriched_in)):
                for key, value in theirs.items():
                    mine.setdefault(key, value)
    return {
        "features": _table(list(features.values()), TABLES["features"]),
        "genes": _table(list(genes.values()), TABLES["genes"]),
        "terms": _table(list(terms.values()), TABLES["terms"]),
        "feature_genes": _table([{"feature": f, "gene": g, **p} for (f, g), p in top_genes.items()],
                                TABLES["feature_genes"]),
        "feature_terms": _table([{"feature": f, "term": t, **p} for (f, t), p in enriched.items()],
                                TABLES["feature_terms"]),
        "gene_terms": _table(_read(graph, "release_gene_terms"), TABLES["gene_terms"]),
    }


def _experiment_tables(graph: Graph) -> dict[str, pa.Table]:
    """Interaction and Steering nodes, their experiments' Run nodes, and their links to features."""
    nodes = _read(graph, "release_experiment_nodes")
    links = _read(graph, "release_experiment_links")

    def of(label: str) -> list[dict[str, Any]]:
        return [row["properties"] for row in nodes if row["label"] == label]

    def linked(kind: str, source: str) -> list[dict[str, Any]]:
        return [{source: row["source"], "feature": row["feature"], **row["properties"]}
                for row in links if row["type"] == kind]

    return {
        "experiment_runs": _table(of("Run"), TABLES["experiment_runs"]),
        "interactions": _table(of("Interaction"), TABLES["interactions"]),
        "steering": _table(of("Steering"), TABLES["steering"]),
        "interaction_members": _table(linked("HAS_MEMBER", "interaction"), TABLES["interaction_members"]),
        "interaction_targets": _table(linked("INTERACTS_ON", "interaction"), TABLES["interaction_targets"]),
        "steering_features": _table(linked("STEERS", "steering"), TABLES["steering_features"]),
    }


def _write_documents(graph: Graph, out: Path, uids: list[str], progress: StageProgress) -> int:
    """One feature document per feature: the explorer's own document function, so the files equal its API."""
    from atlas.analysis.browse import feature_document

    for position, uid in enumerate(uids, start=1):
        path = out / document_path(uid)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(feature_document(graph, uid), allow_nan=False, sort_keys=True), encoding="utf-8")
        progress("feature documents", position, len(uids))
    return len(uids)


def _dump(out: Path) -> None:
    """``neo4j-admin database dump`` of the managed atlas (the server is stopped for it and started again)."""
    if os.environ.get("NEO4J_URI"):
        raise AtlasError("--dump needs the managed server (neo4j-admin dumps a local store); unset NEO4J_URI")
    config = server.ServerConfig.from_env()
    (out / DUMP_DIR).mkdir()
    server.stop(config)
    try:
        result = server.run_admin(config, "database", "dump", DATABASE, f"--to-path={out / DUMP_DIR}",
                                  "--overwrite-destination=true")
    finally:
        server.start(config)
    if result.returncode != 0 or not (out / DUMP_FILE).is_file():
        lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()] or ["no output"]
        raise AtlasError(f"neo4j-admin database dump failed: {lines[-1]}")


def create_release(
    graph: Graph,
    out: str | Path,
    runs: list[str],
    *,
    sae_atlas: str | Path | None = None,
    licence: str | None = None,
    citation: str | None = None,
    dump: bool = False,
    tar: bool = False,
    progress: StageProgress | None = None,
) -> dict[str, Any]:
    """Write a release of these runs into ``out`` (which must not exist or be empty); return its summary.

    ``sae_atlas`` adds the catalog features the graph lacks; ``dump`` adds a dump of the whole managed database;
    ``tar`` also writes ``out.tar``.
    """
    started = time.perf_counter()
    say = progress or (lambda stage, done, total: None)
    out = Path(out)
    if not runs:
        raise AtlasError("give at least one run to release (--run RUN_ID)")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AtlasError(f"{out} exists and is not an empty directory; choose a new release directory")
    out.mkdir(parents=True, exist_ok=True)
    entries = [_run_entry(graph, run_id, out, say) for run_id in dict.fromkeys(runs)]
    pairs = sorted({(entry["manifest"]["model"], entry["manifest"]["sae"]) for entry in entries})
    tables = {**_annotation_tables(graph, [list(pair) for pair in pairs], Path(sae_atlas) if sae_atlas else None),
              **_experiment_tables(graph)}
    (out / table_path("")).parent.mkdir(exist_ok=True)
    for name, table in tables.items():
        pq.write_table(table, out / table_path(name), compression="zstd")
    say("tables", len(tables), len(tables))
    uids = tables["features"].column("uid").to_pylist()
    documents = _write_documents(graph, out, uids, say)
    if dump:
        _dump(out)
        say("dump", 1, 1)
    files = {path.relative_to(out).as_posix(): file_sha256(path)
             for path in sorted(out.rglob("*")) if path.is_file()}
    layers = sorted(set(tables["features"].column("layer").to_pylist()))
    release = {
        "format": FORMAT, "format_version": FORMAT_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": __version__, "licence": licence, "citation": citation,
        "model": sorted({model for model, _ in pairs}),
        "sae_set": {"names": sorted({sae for _, sae in pairs}), "layers": layers,
                    "catalog": str(sae_atlas) if sae_atlas else None},
        "runs": entries,
        "thresholds": {entry["id"]: entry["manifest"]["thresholds"] for entry in entries},
        "definitions": DEFINITIONS,
        "counts": {**{name: table.num_rows for name, table in tables.items()}, "documents": documents,
                   "edges": sum(entry["edges"] for entry in entries)},
        "dump": DUMP_FILE if dump else None,
        "files": files,
    }
    (out / RELEASE_JSON).write_text(json.dumps(release, indent=2, sort_keys=True, allow_nan=False) + "\n",
                                    encoding="utf-8")
    archive = None
    if tar:
        archive = out.with_name(out.name + ".tar")
        with tarfile.open(archive, "w") as bundle:
            bundle.add(out, arcname=out.name)
    size = sum(path.stat().st_size for path in out.rglob("*") if path.is_file())
    return {"directory": str(out), "tar": str(archive) if archive else None, "runs": [e["id"] for e in entries],
            "counts": release["counts"], "files": len(files) + 1, "bytes": size,
            "seconds": round(time.perf_counter() - started, 3)}
