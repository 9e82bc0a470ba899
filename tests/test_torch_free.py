"""The loader and query side runs where torch cannot even be imported: real `atlas` processes whose `import torch`
(and `import transformers`) fails, loading a run, querying and analysing it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from atlas.runformat import read_manifest
from benchmarks.synthetic import make_synthetic_run
from tests.cli import atlas_env, run_atlas

pytestmark = pytest.mark.neo4j


@pytest.fixture
def no_torch(tmp_path) -> dict[str, str]:
    """An environment whose PYTHONPATH starts with modules `torch` and `transformers` that refuse to import."""
    shim = tmp_path / "no-torch"
    shim.mkdir()
    for name in ("torch", "transformers"):
        (shim / f"{name}.py").write_text(f"raise ImportError('{name} is not installed on this loader host')\n")
    env = atlas_env(PYTHONPATH=os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")])))
    refused = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert "not installed on this loader host" in refused.stderr
    return env


def _strict(text: str):
    """Parse JSON that must not hold NaN or Infinity."""
    return json.loads(text, parse_constant=lambda constant: pytest.fail(f"{constant} in JSON output"))


def test_ingest_query_and_analyze_run_where_importing_torch_fails(clean_graph, tmp_path, no_torch):
    run_dir: Path = make_synthetic_run(tmp_path / "L05", scale=0.002, seed=3)
    run_id = read_manifest(run_dir).run_id
    loaded = run_atlas("ingest", run_dir, "--json", env=no_torch)
    assert loaded.returncode == 0, loaded.stderr
    assert _strict(loaded.stdout)[0]["status"] == "loaded"
    hubs = run_atlas("query", "hubs", "-p", f"run={run_id}", "-p", "limit=5", "--json", env=no_torch)
    assert hubs.returncode == 0, hubs.stderr
    assert len(_strict(hubs.stdout)) == 5
    analysed = run_atlas("analyze", "hubs", "--run", run_id, "--json", env=no_torch)
    assert analysed.returncode == 0, analysed.stderr
    assert _strict(analysed.stdout)["analysis"] == "hubs"
