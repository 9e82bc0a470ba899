"""Calibration (`atlas trace calibrate`): kept per-cell deltas, the sign-flip permutation null on planted effects and
on a tiny real run, permutation p and BH, determinism, and the calibrated edges in the real Neo4j."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from click.testing import CliRunner
from scipy import stats as scipy_stats

import queries
from atlas.analysis.calibration import calibration
from atlas.analysis.scope import resolve_scope
from atlas.cli import cli
from atlas.errors import AtlasError
from atlas.runformat import read_manifest, read_shard
from atlas.trace.calibrate import calibrate_run, feature_null, sign_vectors
from atlas.trace.deltas import feature_deltas, read_unit_deltas
from atlas.trace.run import TraceConfig, finalize_run, merge_run, plan_run, run_units
from atlas.trace.stats import Thresholds
from loaders.digest import graph_digest
from loaders.offline import bulk_import
from loaders.online import ingest_run, run_state
from loaders.runs import validate_run
from loaders.schema import feature_uid
from tests.test_loaders_offline import fresh_driver
from tests.tiny import build_tiny_atlas, save_tiny_bert, save_tiny_cells, tiny_bert, tiny_cells

PERMUTATIONS = 200


def _strict(text: str):
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"non-strict JSON constant {name}"))


@pytest.fixture(scope="module")
def traced(tmp_path_factory) -> Path:
    """A finalized tiny real run (12 cells, two feature ranges) traced with float32 deltas kept."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("calibration")
    cells = tiny_cells(5, 12, min_genes=12)
    build_tiny_atlas(root / "saes", tiny_bert(5), cells, steps=20, seed=5)
    config = TraceConfig(model=str(save_tiny_bert(root / "model", seed=5)), saes=str(root / "saes"),
                         cells=str(save_tiny_cells(root / "cells", cells)), source_layer=1, downstream_layers=[2, 3],
                         batch_size=16)
    run_dir = root / "run"
    plan_run(run_dir, config, np.arange(0, 128), thresholds=Thresholds(), features_per_shard=64,
             cells_per_shard=8, cells=config.load_cells(), selection={"method": "list"}, run_id="calibrated")
    run_units(run_dir, device="cpu", deltas_dtype="float32")
    merge_run(run_dir)
    finalize_run(run_dir)
    return run_dir


@pytest.fixture(scope="module")
def calibrated_template(traced, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("calibrated") / "run"
    shutil.copytree(traced, run_dir)
    calibrate_run(run_dir, permutations=PERMUTATIONS, seed=7)
    return run_dir


@pytest.fixture
def calibrated(calibrated_template, tmp_path) -> Path:
    """A private copy of the calibrated run."""
    return Path(shutil.copytree(calibrated_template, tmp_path / "run"))


def edges_of(run_dir: Path):
    manifest = read_manifest(run_dir)
    return [row for record in manifest.shards for row in read_shard(run_dir, record, manifest).to_pylist()]


def deltas_of(run_dir: Path, feature: int):
    manifest = read_manifest(run_dir)
    files = [read_unit_deltas(run_dir / entry["file"], entry["sha256"]) for entry in manifest.extra["deltas"]]
    return feature_deltas(files, np.array([feature]))[feature]


def test_kept_deltas_are_the_per_cell_observations_the_edge_statistics_average(traced):
    manifest = read_manifest(traced)
    assert len(manifest.extra["deltas"]) == len(manifest.extra["plan"]["units"]) == 4
    for edge in edges_of(traced)[::7]:
        kept = deltas_of(traced, edge["source_feature"])
        values = kept.layers[edge["target_layer"]][:, edge["target_feature"]]
        assert kept.n == edge["n"] and list(kept.cells) == sorted(kept.cells)
        assert values.mean() == pytest.approx(edge["mean"], rel=1e-5, abs=1e-6)
        assert values.std(ddof=1) == pytest.approx(edge["std"], rel=1e-4, abs=1e-6)


def test_permutation_p_of_an_edge_equals_a_literal_sign_flip_count(calibrated):
    edge = max((row for row in edges_of(calibrated) if row["n"] >= 6), key=lambda row: (row["n"], abs(row["d"])))
    values = deltas_of(calibrated, edge["source_feature"]).layers[edge["target_layer"]][:, edge["target_feature"]]
    observed = abs(values.mean() / values.std(ddof=1))
    signs = sign_vectors(7, edge["source_feature"], PERMUTATIONS, len(values))
    exceed = 0
    for flips in signs:
        flipped = [sign * value for sign, value in zip(flips, values, strict=True)]
        if abs(np.mean(flipped) / np.std(flipped, ddof=1)) >= observed:
            exceed += 1
    assert edge["perm_p"] == pytest.approx((1 + exceed) / (1 + PERMUTATIONS), rel=1e-6)


def test_perm_q_is_benjamini_hochberg_over_every_live_target_of_the_calibrated_features(calibrated):
    manifest = read_manifest(calibrated)
    summary = manifest.extra["calibration"]["summary"]
    family = []
    for feature in pq.read_table(calibrated / "calibration-features.parquet").column("source_feature").to_pylist():
        null = feature_null(deltas_of(calibrated, feature).layers,
                            sign_vectors(7, feature, PERMUTATIONS, deltas_of(calibrated, feature).n), 0.5, 0.7,
                            "reference", feature)
        family += [(feature, layer, target, null.perm_p[layer][target]) for layer in (2, 3)
                   for target in np.flatnonzero(null.live[layer])]
    q = scipy_stats.false_discovery_control([entry[3] for entry in family])
    expected = {entry[:3]: value for entry, value in zip(family, q, strict=True)}
    assert summary["permutation"]["bh_total_tests"] == len(family)
    for edge in edges_of(calibrated):
        key = (edge["source_feature"], edge["target_layer"], edge["target_feature"])
        assert edge["perm_q"] == pytest.approx(expected[key], rel=1e-5)


def _planted(rng, targets: int, strong: int, cells: int = 20) -> np.ndarray:
    """Per-cell deltas: ``strong`` targets with a large consistent effect, the rest symmetric noise."""
    deltas = rng.normal(0.0, 1.0, size=(cells, targets))
    deltas[:, :strong] = rng.normal(1.0, 0.2, size=(cells, strong))
    return deltas


def test_planted_features_without_a_real_effect_have_an_empirical_fdr_near_one():
    rng = np.random.default_rng(1)
    ratios = []
    for feature in range(5):
        null = feature_null({6: _planted(rng, 4000, 0)}, sign_vectors(0, feature, PERMUTATIONS, 20), 0.5, 0.7,
                            "reference", feature)
        assert null.observed_edges > 20  # noise alone passes the raw thresholds
        ratios.append(null.null_edges.mean() / null.observed_edges)
    assert 0.8 < np.mean(ratios) < 1.25


def test_planted_strong_effects_have_an_empirical_fdr_near_zero_and_the_smallest_p():
    rng = np.random.default_rng(2)
    deltas = _planted(rng, 4000, 300) * (np.arange(4000) < 300)  # the other targets never change (degenerate)
    null = feature_null({6: deltas}, sign_vectors(0, 3, PERMUTATIONS, 20), 0.5, 0.7, "reference", 3)
    assert null.observed_edges == 300
    # Not 0: one sign vector serves every target, and one with >= 15 of 20 cells alike (p ~ 0.04) keeps every
    # strong target an edge. That is the study's null, and why its measured FDR was 3.6%.
    assert null.null_edges.mean() / null.observed_edges < 0.1
    assert np.median(null.null_edges) == 0
    assert (null.perm_p[6][:300] <= 2 / (1 + PERMUTATIONS)).all()
    assert not null.live[6][300:].any() and (null.perm_p[6][300:] == 1).all()


def test_the_signed_consistency_null_matches_the_signed_definition():
    rng = np.random.default_rng(4)
    deltas = rng.normal(0.2, 1.0, size=(12, 50)) * (rng.random((12, 50)) > 0.3)
    null = feature_null({2: deltas}, np.ones((1, 12)), 0.0, 0.0, "signed", 0)
    mean = deltas.mean(axis=0)
    agreeing = np.where(mean > 0, (deltas > 0).sum(axis=0), (deltas < 0).sum(axis=0)) / 12
    assert null.observed_edges == int(((np.abs(mean) > 0) & (agreeing > 0)).sum())


def test_calibration_with_a_seed_is_deterministic(traced, tmp_path):
    runs = [Path(shutil.copytree(traced, tmp_path / name)) for name in ("a", "b")]
    for run_dir in runs:
        calibrate_run(run_dir, permutations=50, seed=3)
    files = [{path.relative_to(run_dir).as_posix(): path.read_bytes() for path in sorted(run_dir.rglob("*"))
              if path.is_file()} for run_dir in runs]
    assert files[0] == files[1]
    calibrate_run(runs[1], permutations=50, seed=4)
    assert [row["perm_p"] for row in edges_of(runs[0])] != [row["perm_p"] for row in edges_of(runs[1])]


def test_a_subset_is_the_highest_degree_third_plus_strata_and_is_extrapolated(calibrated):
    summary = calibrate_run(calibrated, permutations=50, features=9, seed=1).summary
    table = pq.read_table(calibrated / "calibration-features.parquet").to_pandas()
    degrees = {}
    for edge in edges_of(calibrated):
        degrees[edge["source_feature"]] = degrees.get(edge["source_feature"], 0) + 1
    top = sorted(degrees, key=lambda feature: -degrees[feature])[:3]
    assert len(table) == summary["permutation"]["n_features"] == 9 and set(top) <= set(table["source_feature"])
    assert summary["extrapolated"] and summary["n_features_traced"] > 9
    assert summary["permutation"]["estimated_total_edges_fdr_all_features"] >= 0
    calibrated_edges = [edge for edge in edges_of(calibrated) if edge["source_feature"] in set(table["source_feature"])]
    assert all(edge["perm_p"] is not None for edge in calibrated_edges)
    assert all(edge["perm_p"] is None for edge in edges_of(calibrated) if edge not in calibrated_edges)


def test_the_cli_prints_strict_json_with_the_studys_field_names(traced, tmp_path):
    run_dir = shutil.copytree(traced, tmp_path / "run")
    result = CliRunner().invoke(cli, ["trace", "calibrate", str(run_dir), "--permutations", "30", "--json"])
    assert result.exit_code == 0, result.output
    summary = _strict(result.output)
    assert {"empirical_fdr_subset", "expected_null_edges_subset", "bh_surviving_fraction",
            "surviving_by_degree_decile", "estimated_total_edges_fdr_all_features"} <= set(summary["permutation"])
    assert len(summary["threshold_sweep"]) == 20 and "d>0.5,c>0.7" in summary["threshold_sweep_null"]
    assert _strict(json.dumps(read_manifest(run_dir).extra["calibration"]))


def test_calibrating_without_kept_deltas_is_one_clear_line(traced, tmp_path):
    run_dir = Path(shutil.copytree(traced, tmp_path / "run"))
    manifest_path = run_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["extra"]["deltas"]
    manifest_path.write_text(json.dumps(manifest))
    atlas = Path(sys.executable).parent / "atlas"
    result = subprocess.run([str(atlas), "trace", "calibrate", str(run_dir)], capture_output=True, text=True,
                            env=os.environ.copy(), timeout=300)
    assert result.returncode == 1 and result.stderr.count("\n") == 1 and "--keep-deltas" in result.stderr
    with pytest.raises(AtlasError, match="--features"):
        calibrate_run(traced, features=0)


@pytest.mark.neo4j
def test_calibrated_edges_load_exactly_once_behind_the_fence_with_their_run_and_features(clean_graph, calibrated):
    manifest = read_manifest(calibrated)
    first = ingest_run(clean_graph, calibrated)
    again = ingest_run(clean_graph, calibrated)
    assert again.edges_written == 0 and first.edges_written == manifest.counts["edges"]
    rows = clean_graph.read("MATCH (s:Feature)-[e:AFFECTS {run: $run}]->(t:Feature) RETURN s.index AS source, "
                            "t.layer AS layer, t.index AS target, e.perm_p AS perm_p, e.perm_q AS perm_q",
                            run=manifest.run_id)
    loaded = {(row["source"], row["layer"], row["target"]): (row["perm_p"], row["perm_q"]) for row in rows}
    shard = {(row["source_feature"], row["target_layer"], row["target_feature"]): (row["perm_p"], row["perm_q"])
             for row in edges_of(calibrated)}
    assert len(rows) == len(shard) and loaded.keys() == shard.keys()
    assert all(loaded[key] == pytest.approx(shard[key]) for key in shard)

    counts = queries.get("attenuation_counts")
    cut = 0.5
    fenced = sum(row["edges"] for row in clean_graph.read(counts.text, runs=[manifest.run_id], layers=None,
                                                          max_q=cut, q_column="perm_q"))
    assert fenced == sum(1 for value in shard.values() if value[1] <= cut)
    clean_graph.write("MATCH (run:Run {id: $run}) SET run.visible = []", run=manifest.run_id)
    assert clean_graph.read(counts.text, runs=[manifest.run_id], layers=None, max_q=cut, q_column="perm_q") == []

    summary = manifest.extra["calibration"]["summary"]
    run = run_state(clean_graph, manifest.run_id)
    assert run["calibration_n_perm"] == PERMUTATIONS and json.loads(run["calibration"]) == summary
    assert run["calibration_expected_null_edges"] == pytest.approx(
        summary["permutation"]["expected_null_edges_subset"])
    table = pq.read_table(calibrated / "calibration-features.parquet").to_pandas().set_index("source_feature")
    features = clean_graph.read("MATCH (f:Feature {layer: 1}) WHERE f.calibration_run = $run RETURN f.index AS index, "
                                "f.calibration_expected_null_edges AS expected", run=manifest.run_id)
    sources = {edge[0] for edge in shard}
    assert {row["index"] for row in features} == sources
    assert all(row["expected"] == pytest.approx(table.loc[row["index"], "expected_null_edges"]) for row in features)
    assert {row["uid"] for row in validate_run(calibrated).calibration} == {
        feature_uid(manifest.model, manifest.sae, 1, index) for index in sources}


@pytest.mark.neo4j
def test_max_q_on_perm_q_needs_a_calibrated_run_and_the_report_reads_the_calibration(clean_graph, calibrated,
                                                                                    traced):
    ingest_run(clean_graph, calibrated)
    scope = resolve_scope(clean_graph, ["calibrated"], max_q=0.5, q_column="perm_q")
    assert "@perm_q<=0.5" in scope.key and "--q-column perm_q" in scope.command_flags()
    result = calibration(clean_graph, scope)
    assert len(result.tables["sweep"]) == 20 and len(result.tables["deciles"]) == 10
    clean_graph.write("MATCH (run:Run) REMOVE run.calibration_n_perm")
    with pytest.raises(AtlasError, match="no permutation q-values"):
        resolve_scope(clean_graph, ["calibrated"], max_q=0.05, q_column="perm_q")


@pytest.mark.neo4j
@pytest.mark.slow
@pytest.mark.skipif(bool(os.environ.get("NEO4J_URI")), reason="the offline import needs the managed server")
def test_the_offline_import_of_a_calibrated_run_builds_the_online_loaders_graph(clean_graph, calibrated):
    ingest_run(clean_graph, calibrated)
    online = graph_digest(clean_graph)
    bulk_import([validate_run(calibrated)], force=True)
    fresh_driver(clean_graph)
    assert graph_digest(clean_graph) == online
    assert clean_graph.read("MATCH ()-[e:AFFECTS]->() WHERE e.perm_q IS NOT NULL RETURN count(e) AS n")[0]["n"] == \
        read_manifest(calibrated).counts["edges"]
