"""The reference study's definitions, each checked against a literal computation written here (tiny real models).

Top-k membership with planted non-positive top-k values (tracing engine, reference engine and experiments agree
with a literal count), the study's per-condition positions and ratio rule on a planted triplet, steering of the
early cells only, and a seeded, reproducible cell sample.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from atlas.cells import load_cells
from atlas.experiments.ablation import ablate
from atlas.experiments.features import FeatureRef, FeatureSet
from atlas.experiments.interactions import pair_redundancy, target_statistics
from atlas.experiments.reference import reference_ablation_changes
from atlas.experiments.steering import steer
from atlas.trace.engine import trace_cells
from atlas.trace.reference import reference_trace_cells
from atlas.trace.setup import TraceSetup
from tests.tiny import CLS, EOS, fit_tiny_sae, layer_activations, save_tiny_cells, tiny_bert, tiny_cells

SOURCE, TARGET = 1, 3


@pytest.fixture(scope="module")
def planted():
    """A 4-layer tiny BERT, 8 cells and TopK SAEs (64 features, k=8) whose layer-1 encoder bias is lowered so that
    about half of the top-k slots hold non-positive pre-activations (selected, but 0 after ReLU)."""
    torch.set_num_threads(1)
    model = tiny_bert(seed=4)
    cells = tiny_cells(seed=5, n_cells=8)
    activations, _ = layer_activations(model, cells, [0, 1, 2, 3])
    saes = {layer: fit_tiny_sae(activations[layer], 64, 8, seed=layer, steps=30) for layer in range(4)}
    source = copy.deepcopy(saes[SOURCE])
    with torch.no_grad():
        kth_largest = torch.topk(source.pre_activations(activations[SOURCE]), 8, dim=-1).values
        source.encoder_bias -= kth_largest.median()
    saes[SOURCE] = source
    return model, cells, saes


def _literal_membership(model, cells, sae, layer: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per cell: which features are among the top-k pre-activations at some gene position, and which are > 0 after
    ReLU somewhere, computed with torch.topk directly (no atlas code but the SAE's weights)."""
    rows = []
    with torch.no_grad():
        for cell in cells:
            hidden = model(input_ids=torch.as_tensor(cell)[None], output_hidden_states=True).hidden_states[layer + 1]
            genes = torch.as_tensor((cell != CLS) & (cell != EOS))
            pre = (hidden[0][genes] - sae.mean) @ sae.encoder_weight.T + sae.encoder_bias
            values, indices = torch.topk(pre, sae.k, dim=-1)
            members = np.zeros(sae.n_features, dtype=bool)
            members[indices.flatten().numpy()] = True
            positive = np.zeros(sae.n_features, dtype=bool)
            positive[indices[values > 0].numpy()] = True
            rows.append((members, positive))
    return rows


def test_the_plant_holds_top_k_members_that_are_never_positive(planted):
    model, cells, saes = planted
    membership = _literal_membership(model, cells, saes[SOURCE], SOURCE)
    in_topk = np.sum([members for members, _ in membership], axis=0)
    positive = np.sum([positive for _, positive in membership], axis=0)
    assert (in_topk > positive).sum() >= 5  # (feature, cell) pairs counted by topk and not by positive
    assert (positive > 0).sum() >= 5


@pytest.mark.parametrize("active", ["topk", "positive"])
def test_tracing_counts_the_cells_of_the_literal_definition_in_both_engines(planted, active):
    model, cells, saes = planted
    membership = _literal_membership(model, cells, saes[SOURCE], SOURCE)
    expected = np.sum([members if active == "topk" else positive for members, positive in membership], axis=0)
    features = np.flatnonzero(expected)
    setup = TraceSetup(model, saes, SOURCE, [2, TARGET], active=active)
    batched = trace_cells(setup, features, cells, batch_size=7)
    reference = reference_trace_cells(setup, features, cells)
    np.testing.assert_array_equal(batched.n.numpy(), expected[features])
    np.testing.assert_array_equal(reference.n.numpy(), expected[features])
    for layer in (2, TARGET):
        torch.testing.assert_close(batched.mean[layer], reference.mean[layer], atol=1e-5, rtol=0)
        assert torch.equal(batched.positive[layer], reference.positive[layer])


def test_a_top_k_member_that_is_zero_everywhere_changes_nothing_in_that_cell(planted):
    model, cells, saes = planted
    membership = _literal_membership(model, cells, saes[SOURCE], SOURCE)
    zero_only = [(cell, feature) for cell, (members, positive) in enumerate(membership)
                 for feature in np.flatnonzero(members & ~positive)]
    cell, feature = zero_only[0]
    state = trace_cells(TraceSetup(model, saes, SOURCE, [TARGET], active="topk"), [feature], [cells[cell]])
    assert state.n.tolist() == [1]
    assert not state.mean[TARGET].any()


def test_ablation_counts_each_conditions_own_cells_by_top_k_membership(planted):
    model, cells, saes = planted
    membership = _literal_membership(model, cells, saes[SOURCE], SOURCE)
    in_topk = np.array([members for members, _ in membership])
    late = _literal_membership(model, cells, saes[2], 2)
    frequent = np.argsort(-in_topk.sum(axis=0), kind="stable")
    a, b = (FeatureRef(SOURCE, int(index)) for index in frequent[:2])
    c = FeatureRef(2, int(np.argsort(-np.sum([m for m, _ in late], axis=0), kind="stable")[0]))
    result = ablate(model, saes, cells, [FeatureSet("t", (a, b, c))], TARGET)
    cells_of = {a: in_topk[:, a.index], b: in_topk[:, b.index], c: np.array([m[c.index] for m, _ in late])}
    for mask, members in ((1, [a]), (2, [b]), (4, [c]), (3, [a, b]), (5, [a, c]), (6, [b, c]), (7, [a, b, c])):
        expected = np.any([cells_of[member] for member in members], axis=0).sum()
        assert result.effects[0].n_by_condition[mask] == expected
    reference = reference_ablation_changes(model, saes, cells, [a], TARGET, position_members=[a], active="topk")
    np.testing.assert_allclose(result.effects[0].mean[1], reference.mean(0), atol=1e-5)


def _planted_triplet() -> tuple[np.ndarray, np.ndarray]:
    """Effects of a triplet on five targets (rows: clean, A, B, AB, C, AC, BC, ABC) and their consistencies."""
    d = np.zeros((8, 5))
    consistency = np.full((8, 5), 0.9)
    d[1:, 0] = [0.9, 0.8, 1.0, 0.7, 1.1, 0.9, 1.2]       # redundant members: ratio 1.2 / 2.4 = 0.5
    d[1:, 1] = [0.004, -0.003, 0.002, 0.002, 0.6, -0.1, 0.6]  # singles sum 0.009 <= 0.01: ratio set to 1.0
    d[1:, 2] = [0.3, 0.2, 1.5, 0.1, 0.5, 0.4, 1.8]        # together only: ratio 1.8 / 0.6 = 3
    d[1:, 3] = [0.9, 0.1, 0.2, 0.1, 0.2, 0.1, 0.3]        # |d| > 0.5 but never consistent: not a target
    consistency[:, 3] = 0.6
    d[1:, 4] = [-0.6, -0.2, -0.5, -0.1, -0.4, -0.3, -0.8]  # additive, negative: ratio 0.8 / 0.9
    return d, consistency


def test_the_studys_triplet_statistics_equal_the_literal_formulas():
    d, consistency = _planted_triplet()
    stats = target_statistics(d, consistency=consistency)
    assert stats.targets.tolist() == [0, 1, 2, 4]
    a, b, ab, c, ac, bc, abc = (np.abs(d[mask][stats.targets]) for mask in range(1, 8))
    singles = a + b + c
    ratio = np.where(singles > 0.01, abc / singles, 1.0)
    np.testing.assert_allclose(stats.redundancy, ratio)
    assert stats.redundancy[1] == 1.0
    np.testing.assert_allclose(stats.interaction, abc - ab - ac - bc + a + b + c, rtol=0, atol=1e-12)
    np.testing.assert_allclose(stats.marginal_last, abc - ab, rtol=0, atol=1e-12)
    expected_classes = np.where(ratio < 0.8, "subadditive", np.where(ratio > 1.2, "superadditive", "additive"))
    assert stats.classes.tolist() == expected_classes.tolist()
    pairs = [np.median(np.where(x + y > 0.01, xy / (x + y), 1.0)) for x, y, xy in ((a, b, ab), (a, c, ac), (b, c, bc))]
    np.testing.assert_allclose(pair_redundancy(d, stats.targets), pairs)


def test_the_studys_ratio_rule_differs_from_the_whole_set_definition_only_where_it_should():
    d, consistency = _planted_triplet()
    study = target_statistics(d, consistency=consistency)
    whole = target_statistics(d, definition="whole-set")
    assert 3 in whole.targets.tolist() and 3 not in study.targets.tolist()
    at = {target: i for i, target in enumerate(whole.targets)}
    assert whole.redundancy[at[1]] == pytest.approx(0.6 / 0.009)
    assert whole.interaction[at[4]] == pytest.approx(-0.8 + 0.5 + 0.4 + 0.3 - 0.6 - 0.2 - 0.1)


def test_steering_moves_only_the_early_tertile(planted):
    model, cells, saes = planted
    pseudotime = np.linspace(0.0, 1.0, len(cells))
    low, high = np.percentile(pseudotime, [33.3, 66.7])
    early = set(np.flatnonzero(pseudotime <= low).tolist())
    membership = _literal_membership(model, cells, saes[SOURCE], SOURCE)
    in_topk = np.array([members for members, _ in membership])
    feature = int(np.argmax(in_topk.sum(axis=0)))
    result = steer(model, saes, cells, features=[FeatureRef(SOURCE, feature)], pseudotime=pseudotime)
    assert set(result.extremes.early.tolist()) == early
    assert set(result.extremes.late.tolist()) == set(np.flatnonzero(pseudotime >= high).tolist())
    steered = set(result.cells["cell"].tolist())
    assert steered == {cell for cell in early if in_topk[cell, feature]}
    shifts = result.cells[result.cells["alpha"] == 5.0]["ds"].to_numpy()
    row = result.results.query("alpha == 5.0").iloc[0]
    assert row["std_ds"] == pytest.approx(np.sqrt(np.mean((shifts - shifts.mean()) ** 2)))
    everywhere = steer(model, saes, cells, features=[FeatureRef(SOURCE, feature)], pseudotime=pseudotime,
                       steer_cells="all")
    assert set(everywhere.cells["cell"].tolist()) == set(np.flatnonzero(in_topk[:, feature]).tolist()) > steered


def test_steering_reports_the_top_genes_by_absolute_change(planted):
    model, cells, saes = planted
    feature = FeatureRef(SOURCE, 0)
    result = steer(model, saes, cells, features=[feature], pseudotime=np.arange(len(cells), dtype=float),
                   steer_cells="all", top_genes=5)
    row = result.results.query("alpha == 5.0").iloc[0]
    tokens = [int(name.split(":")[1]) for name in row["top_genes"]]
    assert len(tokens) == 5
    # the five largest |change| lie among the five largest rises and the five largest falls
    ups, downs = ([int(name.split(":")[1]) for name in row[key]] for key in ("top_up", "top_down"))
    assert set(tokens) <= set(ups) | set(downs)
    assert set(tokens) != set(ups[:5])


def test_a_seeded_sample_is_reproducible_and_is_the_literal_draw(tmp_path):
    cells = tiny_cells(seed=6, n_cells=30)
    path = save_tiny_cells(tmp_path / "cells", cells)
    first = load_cells(path, sample=12, seed=42, n_cells=5)
    again = load_cells(path, sample=12, seed=42, n_cells=5)
    other = load_cells(path, sample=12, seed=7, n_cells=5)
    rows = np.sort(np.random.RandomState(42).choice(30, 12, replace=False))[:5]
    assert first.rows.tolist() == again.rows.tolist() == rows.tolist()
    assert first.digest == again.digest != other.digest
    assert all(np.array_equal(got, cells[row]) for got, row in zip(first.input_ids, rows, strict=True))
    assert load_cells(path, sample=40, seed=42).rows.tolist() == list(range(30))  # no more rows than the sample


def test_the_studys_steering_protocol_runs_from_an_h5ad_with_cell_types(tmp_path):
    import anndata
    import pandas as pd

    from atlas.experiments.workflow import CellSource, PseudotimeSource, run_steering
    from tests.tiny import FIRST_GENE, build_tiny_atlas, save_tiny_bert

    torch.set_num_threads(1)
    rng = np.random.default_rng(8)
    n_cells, genes = 24, [f"ENSG{token:04d}" for token in range(FIRST_GENE, 64)]
    time = np.linspace(0, 1, n_cells)
    counts = rng.poisson(np.exp(np.outer(time, rng.normal(size=len(genes))) * 2 + 1)).astype(np.float32)
    types = np.array(["monocyte"] * n_cells, dtype=object)
    types[[5, 9]] = "hematopoietic stem cell"
    anndata.AnnData(counts, obs=pd.DataFrame({"cell_type": types}, index=[f"c{i}" for i in range(n_cells)]),
                    var=pd.DataFrame(index=genes)).write_h5ad(tmp_path / "cells.h5ad")
    tokens = {"<pad>": 0, "<mask>": 1, "<cls>": CLS, "<eos>": EOS} | {gene: FIRST_GENE + i for i, gene in
                                                                      enumerate(genes)}
    medians = {gene: 1.0 for gene in genes}
    cells = CellSource(tmp_path / "cells.h5ad", tokens, medians, n_cells=20, sample=22, seed=3,
                       normalization="log1p")
    loaded = cells.load()
    save_tiny_bert(tmp_path / "model", seed=9, n_layers=3)
    build_tiny_atlas(tmp_path / "saes", tiny_bert(9, n_layers=3), loaded.input_ids, layers=[1], steps=10)
    run, tables = run_steering(tmp_path / "model", tmp_path / "saes", cells, tmp_path / "out", layers=[1],
                               switch_threshold=0.0, max_features=2, pseudotime=PseudotimeSource(n_neighbors=5),
                               device="cpu")
    pseudotime = tables["pseudotime"]
    first_stem = int(np.flatnonzero(types[loaded.rows] == "hematopoietic stem cell")[0])
    assert pseudotime.loc[pseudotime["root"], "cell"].tolist() == [first_stem]
    assert "expression" in run["thresholds"]["pseudotime"] and run["thresholds"]["steer_cells"] == "early"
    assert run["thresholds"]["cells"] == {"sample": 22, "seed": 3, "n_cells": 20, "normalization": "log1p"}
    early = set(pseudotime.loc[pseudotime["group"] == "early", "cell"])
    assert set(tables["cells"]["cell"]) <= early and len(tables["cells"]) > 0
