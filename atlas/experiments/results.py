"""Experiment results on disk: ``run.json`` plus one Parquet file per table, written atomically.

An ablation directory holds ``sets``, ``targets``, ``orders`` and ``conditions``; a steering directory holds
``results``, ``layers``, ``switch``, ``cells`` and ``pseudotime``. The loader (``loaders.experiments``) reads the
same tables, so results can be stored in the graph later, on another machine, without torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from atlas.errors import AtlasError
from atlas.plain import dumps
from atlas.runformat import write_file_atomically
from atlas.version import __version__

RUN_FILE = "run.json"
RESULTS_ROOT = Path("experiments")
TABLES = {"ablation": ("sets", "targets", "orders", "conditions"),
          "steering": ("results", "layers", "switch", "cells", "pseudotime")}


def run_record(kind: str, model: str, sae: str, n_cells: int, cell_set_digest: str, thresholds: dict[str, Any],
               identity: Any, run_id: str | None = None) -> dict[str, Any]:
    """The Run record of an experiment; its default id is a digest of everything that determines the result."""
    digest = hashlib.sha256(json.dumps([kind, model, sae, cell_set_digest, thresholds, identity], sort_keys=True,
                                       default=str).encode()).hexdigest()[:12]
    return {"id": run_id or f"{kind}-{digest}", "kind": kind, "model": model, "sae": sae, "n_cells": n_cells,
            "cell_set_digest": cell_set_digest, "thresholds": thresholds, "code_version": __version__,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "status": "complete"}


def pending_results_dir(root: str | Path = RESULTS_ROOT) -> Path:
    """A fresh directory under ``root`` for a run whose id is not known yet (see :func:`settle_results_dir`)."""
    root = Path(root)
    root.mkdir(exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=".pending-", dir=root))


def settle_results_dir(pending: Path, run_id: str, root: str | Path = RESULTS_ROOT) -> Path:
    """Move results from a pending directory to ``root/<run id>`` (replacing an earlier identical run)."""
    final = Path(root) / run_id
    if final.exists():
        shutil.rmtree(final)
    pending.rename(final)
    return final


def save_tables(out_dir: str | Path, run: dict[str, Any], tables: dict[str, pd.DataFrame]) -> Path:
    """Write every table as Parquet and then ``run.json`` (last, so a directory with it is complete)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        buffer = io.BytesIO()
        table.to_parquet(buffer, index=False)
        write_file_atomically(out_dir / f"{name}.parquet", buffer.getvalue())
    payload = dumps(run | {"tables": sorted(tables)}, sort_keys=True)
    write_file_atomically(out_dir / RUN_FILE, payload.encode())
    return out_dir


def load_tables(out_dir: str | Path) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Read a results directory written by :func:`save_tables`; an incomplete one is a user error."""
    out_dir = Path(out_dir)
    try:
        run = json.loads((out_dir / RUN_FILE).read_text())
    except FileNotFoundError:
        raise AtlasError(f"{out_dir}: no {RUN_FILE} (not a finished experiment results directory)") from None
    except json.JSONDecodeError as error:
        raise AtlasError(f"{out_dir / RUN_FILE}: not valid JSON ({error})") from None
    expected = TABLES.get(run.get("kind"))
    if expected is None:
        raise AtlasError(f"{out_dir / RUN_FILE}: unknown experiment kind {run.get('kind')!r}")
    missing = [name for name in expected if not (out_dir / f"{name}.parquet").is_file()]
    if missing:
        raise AtlasError(f"{out_dir}: missing table(s) {', '.join(missing)}")
    return run, {name: pd.read_parquet(out_dir / f"{name}.parquet") for name in expected}
