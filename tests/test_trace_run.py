"""Run directories: plan, units, kill-and-resume, cell-shard merge, finalisation with run-level BH q-values."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from scipy import stats as scipy_stats

from atlas.errors import AtlasError
from atlas.runformat import read_manifest, read_shard
from atlas.trace.engine import trace_cells
from atlas.trace.run import TraceConfig, finalize_run, merge_run, plan_run, run_status, run_units
from atlas.trace.stats import Thresholds, layer_statistics
from tests.tiny import save_tiny_cells, tiny_cells

FEATURES = np.arange(0, 128, 2)


@pytest.fixture(scope="module")
def inputs(tiny_inputs):
    """The run configuration of the tiny inputs: source layer 1 into layers 2 and 3, on the first seven cells."""
    return TraceConfig(model=str(tiny_inputs / "model"), saes=str(tiny_inputs / "saes"),
                       cells=str(tiny_inputs / "cells"), source_layer=1, downstream_layers=[2, 3], n_cells=7,
                       batch_size=8)


def planned(run_dir, config, features_per_shard=32, cells_per_shard=None, thresholds=None):
    return plan_run(run_dir, config, FEATURES, thresholds=thresholds or Thresholds(),
                    features_per_shard=features_per_shard, cells_per_shard=cells_per_shard,
                    cells=config.load_cells(), selection={"method": "list"})


def complete_run(run_dir, config, **plan):
    planned(run_dir, config, **plan)
    run_units(run_dir, device="cpu")
    merge_run(run_dir)
    return finalize_run(run_dir)


def run_files(run_dir):
    return {path.relative_to(run_dir).as_posix(): path.read_bytes()
            for path in sorted(run_dir.rglob("*")) if path.is_file() and path.name != "manifest.json"}


def test_a_finalized_run_holds_every_significant_edge_of_the_engine_with_valid_shards(inputs, tmp_path):
    manifest = complete_run(tmp_path / "run", inputs)
    tables = [read_shard(tmp_path / "run", record, manifest) for record in manifest.shards]
    assert manifest.status == "finalized" and len(manifest.shards) == 2
    edges = {(row["target_layer"], row["source_feature"], row["target_feature"]): row
             for table in tables for row in table.to_pylist()}
    setup = inputs.load_setup("cpu")
    state = trace_cells(setup, FEATURES, inputs.load_cells().input_ids, batch_size=8)
    expected = set()
    for layer in (2, 3):
        stats = layer_statistics(state, layer)
        mask = (np.abs(stats.cohens_d) > 0.5) & (stats.consistency > 0.7)
        expected |= {(layer, int(stats.source_features[r]), int(c)) for r, c in zip(*np.nonzero(mask), strict=True)}
    assert set(edges) == expected and len(expected) == manifest.counts["edges"] > 0
    assert manifest.counts["edges_per_layer"] == {
        str(layer): sum(key[0] == layer for key in expected) for layer in (2, 3)}


def test_q_values_equal_scipys_bh_over_every_test_of_the_run(inputs, tmp_path):
    manifest = complete_run(tmp_path / "run", inputs)
    setup = inputs.load_setup("cpu")
    cells = inputs.load_cells().input_ids
    keys, every_p = [], []
    for features in (FEATURES[:32], FEATURES[32:]):          # the run's two feature shards, traced the same way
        state = trace_cells(setup, features, cells, batch_size=8)
        for layer in (2, 3):
            stats = layer_statistics(state, layer)
            keys += [(layer, int(source), target) for source in stats.source_features
                     for target in range(stats.p.shape[1])]
            every_p.append(stats.p.ravel())
    every_p = np.concatenate(every_p)
    assert manifest.counts["tests"] == every_p.size
    expected = dict(zip(keys, scipy_stats.false_discovery_control(every_p), strict=True))
    table = pq.read_table(tmp_path / "run" / manifest.shards[0].file).to_pandas()
    edge_keys = zip(table["target_layer"], table["source_feature"], table["target_feature"], strict=True)
    want = [expected[key] for key in edge_keys]
    np.testing.assert_allclose(table["q"], want, rtol=1e-6)
    assert len(want) > 10 and (table["q"] >= table["p"]).all()


def test_a_killed_worker_rerun_skips_finished_units_and_gives_byte_identical_files(inputs, tmp_path):
    complete_run(tmp_path / "whole", inputs, features_per_shard=16, cells_per_shard=3)
    killed = tmp_path / "killed"
    planned(killed, inputs, features_per_shard=16, cells_per_shard=3)
    passes = []

    def die_midway(count):
        passes.append(count)
        if len(passes) == 25:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_units(killed, device="cpu", on_passes=die_midway)
    status = run_status(killed)
    assert 0 < status["units_done"] < status["units"]
    report = run_units(killed, device="cpu")
    assert report.skipped == list(range(status["units_done"])) and report.ran
    merge_run(killed)
    finalize_run(killed)
    assert run_files(killed) == run_files(tmp_path / "whole")


def test_array_job_units_in_any_order_then_merge_equal_one_worker(inputs, tmp_path):
    complete_run(tmp_path / "whole", inputs, cells_per_shard=2)
    shuffled = tmp_path / "array"
    planned(shuffled, inputs, cells_per_shard=2)
    for unit in reversed(range(run_status(shuffled)["units"])):
        run_units(shuffled, [unit], device="cpu")
    merge_run(shuffled)
    finalize_run(shuffled)
    assert run_files(shuffled) == run_files(tmp_path / "whole")


def edge_frame(run_dir, manifest) -> pd.DataFrame:
    tables = [read_shard(run_dir, record, manifest).to_pandas() for record in manifest.shards]
    return pd.concat(tables).set_index(["target_layer", "source_feature", "target_feature"])


def test_cell_shards_merge_to_the_edges_of_one_cell_range(inputs, tmp_path):
    one = edge_frame(tmp_path / "one", complete_run(tmp_path / "one", inputs))
    split = edge_frame(tmp_path / "split", complete_run(tmp_path / "split", inputs, cells_per_shard=3))
    # Only structural ties (|d| exactly on the threshold, e.g. one non-zero change among 4 cells) may differ.
    differing = one.index.symmetric_difference(split.index)
    both = pd.concat([one, split])
    assert ((both.loc[both.index.isin(differing), "d"].abs() - 0.5).abs() < 1e-5).all()
    common = one.index.intersection(split.index)
    assert len(common) > 20
    columns = ["mean", "std", "consistency", "p", "q"]
    np.testing.assert_allclose(one.loc[common, columns], split.loc[common, columns], atol=1e-4)


def test_merge_refuses_while_units_are_missing_and_finalize_before_merge(inputs, tmp_path):
    planned(tmp_path / "run", inputs, cells_per_shard=3)
    run_units(tmp_path / "run", [0], device="cpu")
    with pytest.raises(AtlasError, match="not finished"):
        merge_run(tmp_path / "run")
    with pytest.raises(AtlasError, match="merge it first"):
        finalize_run(tmp_path / "run")


def test_replanning_a_directory_with_a_different_run_is_refused(inputs, tmp_path):
    planned(tmp_path / "run", inputs)
    assert planned(tmp_path / "run", inputs).status == "running"
    with pytest.raises(AtlasError, match="different run"):
        planned(tmp_path / "run", inputs, thresholds=Thresholds(cohens_d=0.8))


def test_worker_refuses_cells_that_changed_after_planning(inputs, tmp_path):
    config = TraceConfig(**{**inputs.__dict__, "cells": str(tmp_path / "cells")})
    shutil.copytree(inputs.cells, tmp_path / "cells")
    planned(tmp_path / "run", config)
    shutil.rmtree(tmp_path / "cells")
    save_tiny_cells(tmp_path / "cells", tiny_cells(99, 7))
    with pytest.raises(AtlasError, match="digest"):
        run_units(tmp_path / "run", device="cpu")


def test_manifest_records_thresholds_consistency_mode_and_counts(inputs, tmp_path):
    manifest = complete_run(tmp_path / "run", inputs, thresholds=Thresholds(consistency_mode="signed"))
    assert manifest.thresholds == {"cohens_d": 0.5, "consistency": 0.7, "consistency_definition": "signed",
                                   "min_cells": 2}
    assert manifest.counts["clean_passes"] == 2 * 7 and manifest.counts["ablated_passes"] > 0
    reread = read_manifest(tmp_path / "run")
    summary = pq.read_table(tmp_path / "run" / reread.extra["feature_summaries"][0]["file"]).to_pandas()
    assert set(summary["target_layer"]) == {2, 3} and summary["edges"].sum() == sum(
        record.rows for record in reread.shards[:1])


def test_worker_refuses_sae_weights_that_changed_after_planning(inputs, tmp_path):
    config = TraceConfig(**{**inputs.__dict__, "saes": str(tmp_path / "saes")})
    shutil.copytree(inputs.saes, tmp_path / "saes")
    planned(tmp_path / "run", config)
    mean_file = next((tmp_path / "saes").glob("layer02_*")) / "activation_mean.npy"
    np.save(mean_file, np.load(mean_file) + 1.0)
    with pytest.raises(AtlasError, match="weights digest"):
        run_units(tmp_path / "run", device="cpu")


def test_the_manifest_records_the_active_definition_and_the_cell_choice(inputs, tmp_path):
    config = TraceConfig(**{**inputs.__dict__, "sample": 5, "seed": 3, "n_cells": 4})
    manifest = planned(tmp_path / "run", config)
    assert manifest.active == "topk"
    status = run_status(tmp_path / "run")
    assert status["active"] == "topk" and status["consistency"] == "reference"
    assert status["cells"] == {"sample": 5, "seed": 3, "n_cells": 4, "normalization": None}
    assert manifest.n_cells == 4


def test_a_manifest_written_before_the_active_definition_reads_as_positive(inputs, tmp_path):
    import json

    planned(tmp_path / "run", inputs)
    path = tmp_path / "run" / "manifest.json"
    data = json.loads(path.read_text())
    del data["active"], data["extra"]["config"]["active"], data["extra"]["config"]["sample"]
    path.write_text(json.dumps(data))
    assert read_manifest(tmp_path / "run").active == "positive"
    assert run_status(tmp_path / "run")["active"] == "positive"
    run_units(tmp_path / "run", [0], device="cpu")  # the old plan still runs, with the definition it was made with
