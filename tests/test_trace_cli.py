"""`atlas trace plan|run|status|merge|finalize` on tiny real inputs."""

from __future__ import annotations

import json
import subprocess
import time

from click.testing import CliRunner

from atlas.cli import cli
from atlas.runformat import read_manifest
from tests.cli import ATLAS, run_atlas


def tiny(root) -> list:
    """The --model/--saes/--cells options of the tiny inputs, on their first five cells."""
    return ["--model", root / "model", "--saes", root / "saes", "--cells", root / "cells", "--n-cells", "5"]


def invoke(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*map(str, args), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{"):])


def test_plan_then_run_produces_a_finalized_run_with_full_depth_layers(tiny_inputs, tmp_path):
    run_dir = tmp_path / "run"
    planned = invoke("trace", "plan", *tiny(tiny_inputs), "--source-layer", "1", "--features-per-shard", "40",
                     "--out", run_dir)
    assert planned["downstream_layers"] == [2, 3] and planned["units"] >= 2
    done = invoke("trace", "run", run_dir, "--device", "cpu", "--threads", "1", "--quiet")
    assert done["status"] == "finalized" and done["ablated_passes"] > 0 and done["units_pending"] == 0
    manifest = read_manifest(run_dir)
    assert manifest.extra["selection"] == {"method": "all_active", "min_frequency": 0.001,
                                           "frequency_source": "catalog"}
    assert invoke("trace", "status", run_dir)["status"] == "finalized"
    again = invoke("trace", "run", run_dir, "--device", "cpu", "--quiet")
    assert again["units_run"] == 0 and again["units_skipped"] == planned["units"]


def test_units_one_at_a_time_then_merge_and_finalize(tiny_inputs, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    planned = invoke("trace", "plan", *tiny(tiny_inputs), "--source-layer", "2", "--features", "selective:6",
                     "--min-top-genes", "2", "--cells-per-shard", "2", "--out", run_dir)
    assert planned["source_features"] == 6 and planned["units"] == 3
    for unit in range(planned["units"]):
        monkeypatch.setenv("TASK_INDEX", str(unit))
        assert invoke("trace", "run", run_dir, "--unit-from-env", "TASK_INDEX", "--device", "cpu",
                      "--quiet")["units_run"] == 1
    assert invoke("trace", "merge", run_dir)["status"] == "complete"
    assert invoke("trace", "finalize", run_dir)["status"] == "finalized"


def test_a_missing_sae_layer_is_one_line_and_exit_1(tiny_inputs, tmp_path):
    result = run_atlas("trace", "plan", *tiny(tiny_inputs), "--source-layer", "1", "--downstream", "2,5",
                       "--out", tmp_path / "run")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "layer(s) [5]" in result.stderr


def test_a_malformed_downstream_list_is_an_error_about_layers(tiny_inputs, tmp_path):
    result = run_atlas("trace", "plan", *tiny(tiny_inputs), "--downstream", "2,x", "--out", tmp_path / "run")
    assert result.returncode == 1
    assert result.stderr.strip() == "error: layers '2,x': use comma-separated numbers and ranges like 6,11,17 or 6-17"


def run_files(run_dir):
    """Result files; a SIGKILL during an atomic write may leave a hidden temporary file, which is not a result."""
    return {path.relative_to(run_dir).as_posix(): path.read_bytes() for path in sorted(run_dir.rglob("*"))
            if path.is_file() and path.name != "manifest.json" and not path.name.startswith(".")}


def test_a_worker_killed_with_sigkill_resumes_to_byte_identical_files(tiny_inputs, tmp_path):
    plan_args = ["trace", "plan", *tiny(tiny_inputs), "--source-layer", "0", "--downstream", "2",
                 "--features-per-shard", "2", "--cells-per-shard", "1"]
    invoke(*plan_args, "--out", tmp_path / "whole")
    # Same thread count in every process: float reductions are bit-identical only for the same thread count.
    invoke("trace", "run", tmp_path / "whole", "--device", "cpu", "--threads", "1", "--quiet")
    units = invoke(*plan_args, "--out", tmp_path / "killed")["units"]
    worker = subprocess.Popen([*ATLAS, "trace", "run",
                               str(tmp_path / "killed"), "--device", "cpu", "--threads", "1", "--quiet"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    states = tmp_path / "killed" / "states"
    deadline = time.monotonic() + 240
    while not any(states.glob("*.safetensors")) and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.kill()
    worker.wait()
    finished = len(list(states.glob("*.safetensors")))
    assert 0 < finished < units, "the worker must be killed part-way"
    resumed = invoke("trace", "run", tmp_path / "killed", "--device", "cpu", "--threads", "1", "--quiet")
    assert resumed["units_skipped"] == finished and resumed["status"] == "finalized"
    assert run_files(tmp_path / "killed") == run_files(tmp_path / "whole")


def test_plan_records_the_active_rule_and_cell_sample_and_status_shows_them(tiny_inputs, tmp_path):
    run_dir = tmp_path / "run"
    planned = invoke("trace", "plan", "--model", tiny_inputs / "model", "--saes", tiny_inputs / "saes", "--cells",
                     tiny_inputs / "cells", "--source-layer", "2", "--active", "positive", "--sample", "4",
                     "--seed", "9", "--n-cells", "3", "--out", run_dir)
    assert planned["active"] == "positive" and planned["cells"] == 3
    assert planned["cell_choice"] == {"sample": 4, "seed": 9, "n_cells": 3, "normalization": None}
    assert read_manifest(run_dir).active == "positive"
    text = CliRunner().invoke(cli, ["trace", "status", str(run_dir)], catch_exceptions=False).output
    assert "positive" in text and "first 3 of a random 4 (seed 9)" in text
