"""The release format: a versioned directory that carries a whole atlas (or some of its runs) to another one.

Layout (every path relative to the release directory, every file's SHA-256 in ``release.json``)::

    release.json                      format version, model, SAE set, runs and their manifests, counts, checksums
    tables/<table>.parquet            features, genes, terms, their links, experiment results (TABLES)
    runs/<run id>/<shard file>        the run's visible edges, one file per shard, in the run format's columns
    features/<uid>.json               one feature document per feature (what the explorer's /api/features/<uid> says)
    dump/neo4j.dump                   optional: neo4j-admin database dump of the source atlas

An edge file keeps its shard's name and the run manifest in ``release.json`` keeps the shard's original record
(rows, SHA-256 of the trace's file), so a loaded Run node says exactly what the source's did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from atlas.errors import AtlasError

FORMAT = "circuit-atlas-release"
FORMAT_VERSION = 1
RELEASE_JSON = "release.json"
TABLES_DIR, RUNS_DIR, FEATURES_DIR, DUMP_DIR = "tables", "runs", "features", "dump"
DUMP_FILE = f"{DUMP_DIR}/neo4j.dump"

# Table name -> its required columns with the kind of value each holds ("str", "int", "float", "bool"); a table
# may carry more columns (further properties of the same nodes or relationships).
TABLES: dict[str, dict[str, str]] = {
    "features": {"uid": "str", "model": "str", "sae": "str", "layer": "int", "index": "int"},
    "genes": {"id": "str"},
    "terms": {"id": "str"},
    "feature_genes": {"feature": "str", "gene": "str"},
    "feature_terms": {"feature": "str", "term": "str"},
    "gene_terms": {"gene": "str", "term": "str"},
    "experiment_runs": {"id": "str"},
    "interactions": {"id": "str"},
    "interaction_members": {"interaction": "str", "feature": "str"},
    "interaction_targets": {"interaction": "str", "feature": "str"},
    "steering": {"id": "str"},
    "steering_features": {"steering": "str", "feature": "str"},
}


def table_path(name: str) -> str:
    """The relative path of a table."""
    return f"{TABLES_DIR}/{name}.parquet"


def edges_path(run_id: str, shard_file: str) -> str:
    """The relative path of one shard's edges of a run."""
    return f"{RUNS_DIR}/{run_id}/{shard_file}"


def document_path(uid: str) -> str:
    """The relative path of a feature document: the uid's parts as folders, so a static server answers the same
    path the explorer's API does."""
    parts = uid.split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise AtlasError(f"feature uid {uid!r} cannot name a file")
    return f"{FEATURES_DIR}/{uid}.json"


def read_release_json(directory: Path) -> dict[str, Any]:
    """``release.json`` of a release directory as a dict; a missing or malformed one is an AtlasError."""
    path = Path(directory) / RELEASE_JSON
    if not path.is_file():
        raise AtlasError(f"{directory}: no {RELEASE_JSON} (is this an atlas release directory?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AtlasError(f"{path}: malformed JSON ({error})") from error
    if not isinstance(data, dict):
        raise AtlasError(f"{path}: expected a JSON object")
    return data
