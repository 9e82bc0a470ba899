"""Crash consistency of tracing workers: SIGKILL `atlas trace run` mid-unit and between units, rerun, and every
file of the run directory is byte-identical to an uninterrupted run's (tiny real model, SAEs and cells)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch

from atlas.trace.run import finalize_run, merge_run, run_units
from tests.cli import atlas_env
from tests.reliability.processes import files_of, kill_when

CELLS_DONE = re.compile(r"trace:.*?\|\s*(\d+)/\d+")


def _cells_done(stderr: str) -> int:
    counts = [int(count) for count in CELLS_DONE.findall(stderr)]
    return max(counts, default=0)


@pytest.fixture(scope="module")
def planned_run(tiny_trace_inputs) -> Path:
    """A planned (not yet traced) run of a tiny model: 2 units of up to 64 source features x 12 cells."""
    return tiny_trace_inputs / "plan"


def _finish(run_dir: Path, deltas_dtype: str | None = None) -> None:
    """Trace, merge and finalize in this process at one torch thread, like the workers (`--threads 1`): float
    reductions are bit-identical only at equal thread counts."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_units(run_dir, device="cpu", deltas_dtype=deltas_dtype)
        merge_run(run_dir)
        finalize_run(run_dir)
    finally:
        torch.set_num_threads(threads)


def test_killed_trace_workers_rerun_to_byte_identical_shards(planned_run, tmp_path):
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    shutil.copytree(planned_run, reference)
    shutil.copytree(planned_run, crashed)
    _finish(reference)
    states = crashed / "states"
    env = atlas_env()

    mid_unit = kill_when(["trace", "run", crashed, "--device", "cpu", "--threads", "1"],
                         lambda stderr: _cells_done(stderr) >= 1 and not any(states.iterdir()), env=env)
    assert mid_unit.killed, mid_unit.stderr[-300:]
    assert not any(states.iterdir())  # a unit killed half-way leaves no state behind

    between_units = kill_when(["trace", "run", crashed, "--device", "cpu", "--threads", "1"],
                              lambda _: len(list(states.glob("*.safetensors"))) == 1, env=env)
    assert between_units.killed, between_units.stderr[-300:]
    assert not list(crashed.glob("edges-*.parquet"))  # killed before the merge

    _finish(crashed)
    produced, expected = files_of(crashed), files_of(reference)
    visible = {name: data for name, data in produced.items() if not Path(name).name.startswith(".")}
    assert sorted(visible) == sorted(expected)
    assert [name for name in expected if visible[name] != expected[name]] == []
    assert any(name.startswith("edges-") for name in expected) and any(name.startswith("states/") for name in expected)


def test_killed_workers_keeping_deltas_rerun_to_byte_identical_deltas_and_shards(planned_run, tmp_path):
    reference, crashed = tmp_path / "reference", tmp_path / "crashed"
    shutil.copytree(planned_run, reference)
    shutil.copytree(planned_run, crashed)
    _finish(reference, "float16")
    states, deltas = crashed / "states", crashed / "deltas"
    command = ["trace", "run", crashed, "--device", "cpu", "--threads", "1", "--keep-deltas"]

    mid_unit = kill_when(command, lambda stderr: _cells_done(stderr) >= 1 and not deltas.exists(), env=atlas_env())
    assert mid_unit.killed, mid_unit.stderr[-300:]
    assert not deltas.exists() and not any(states.iterdir())

    between_units = kill_when(command, lambda _: len(list(states.glob("*.safetensors"))) == 1, env=atlas_env())
    assert between_units.killed, between_units.stderr[-300:]
    assert len(list(deltas.glob("*.safetensors"))) >= 1  # a unit's deltas are written before its state

    _finish(crashed, "float16")
    produced, expected = files_of(crashed), files_of(reference)
    visible = {name: data for name, data in produced.items() if not Path(name).name.startswith(".")}
    assert sorted(visible) == sorted(expected)
    assert [name for name in expected if visible[name] != expected[name]] == []
    assert sum(name.startswith("deltas/") for name in expected) == 2
