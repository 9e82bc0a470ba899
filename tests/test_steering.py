"""Trajectory steering on a tiny real model: identities, batching, switch discovery and pseudotime rules."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atlas.errors import AtlasError
from atlas.experiments.features import FeatureRef
from atlas.experiments.pseudotime import choose_root, diffusion_pseudotime, pseudotime_extremes, signatures
from atlas.experiments.reference import reference_steered_logits
from atlas.experiments.steering import state_shift, steer
from tests.tiny import fit_tiny_sae, gene_names, layer_activations, tiny_bert, tiny_cells


@pytest.fixture(scope="module")
def tiny():
    """A 3-layer tiny BERT, 12 cells and TopK SAEs (128 features, k=4) for layers 0 and 1."""
    torch.set_num_threads(1)
    model = tiny_bert(seed=2, n_layers=3)
    cells = tiny_cells(seed=3, n_cells=12)
    activations, _ = layer_activations(model, cells, [0, 1])
    saes = {layer: fit_tiny_sae(activations[layer], 128, 4, seed=layer, steps=40) for layer in (0, 1)}
    return model, cells, saes


def _frequent(model, cells, sae, layer: int, count: int) -> list[int]:
    activations, _ = layer_activations(model, cells, [layer])
    with torch.no_grad():
        frequency = (sae.encode(activations[layer]) > 0).float().mean(0)
    return torch.argsort(frequency, descending=True)[:count].tolist()


@pytest.mark.parametrize("centered", [False, True])
def test_alpha_one_leaves_every_cell_where_it_was(tiny, centered):
    model, cells, saes = tiny
    features = [FeatureRef(0, f) for f in _frequent(model, cells, saes[0], 0, 3)]
    result = steer(model, saes, cells, features=features, alphas=[0.0, 1.0, 3.0], pseudotime=np.arange(12.0),
                   centered=centered)
    unit = result.cells[result.cells["alpha"] == 1.0]
    assert len(unit) == result.results.query("alpha == 1.0")["n_cells"].sum() > 0
    assert (unit["ds"] == 0).all()
    assert result.results.query("alpha == 1.0")["top_up"].map(len).sum() == 0
    moved = result.cells[result.cells["alpha"] == 3.0]["ds"]
    assert (moved != 0).any()


def _mean_activations(model, cells, sae, layer: int) -> np.ndarray:
    """Per cell, the mean activation of every feature over its gene positions."""
    rows = []
    with torch.no_grad():
        for cell in cells:
            hidden, _ = layer_activations(model, [cell], [layer])
            rows.append(sae.encode(hidden[layer]).mean(0).numpy())
    return np.stack(rows)


def test_steering_matches_the_hook_and_rerun_reference(tiny):
    model, cells, saes = tiny
    feature = FeatureRef(1, _frequent(model, cells, saes[1], 1, 1)[0])
    result = steer(model, saes, cells, features=[feature], alphas=[0.0, 3.0], pseudotime=np.arange(12.0))
    clean = np.stack([reference_steered_logits(model, saes[1], cell, feature, 1.0) for cell in cells])
    early, late = signatures(clean, result.extremes)
    for alpha in (0.0, 3.0):
        rows = result.cells[result.cells["alpha"] == alpha]
        steered = np.stack([reference_steered_logits(model, saes[1], cells[c], feature, alpha) for c in rows["cell"]])
        expected = state_shift(steered, clean[rows["cell"].to_numpy()], early, late)
        np.testing.assert_allclose(rows["ds"], expected, atol=1e-6)
        assert np.abs(expected).max() > 1e-5


def test_the_batched_path_equals_one_variant_at_a_time(tiny):
    model, cells, saes = tiny
    features = [FeatureRef(layer, f) for layer in (0, 1) for f in _frequent(model, cells, saes[layer], layer, 2)]
    kwargs = dict(features=features, alphas=[0.0, 2.0], pseudotime=np.linspace(0, 1, 12))
    batched = steer(model, saes, cells, batch_size=32, **kwargs)
    single = steer(model, saes, cells, batch_size=1, **kwargs)
    assert batched.cells[["layer", "feature", "alpha", "cell"]].equals(single.cells[["layer", "feature", "alpha",
                                                                                     "cell"]])
    np.testing.assert_allclose(batched.cells["ds"], single.cells["ds"], atol=1e-6)


def test_a_never_active_feature_steers_no_cell(tiny):
    model, cells, saes = tiny
    saes = dict(saes)
    silenced = fit_tiny_sae(layer_activations(model, cells, [0])[0][0], 128, 4, seed=0, steps=40)
    with torch.no_grad():
        silenced.encoder_bias[5] = -1e4
    saes[0] = silenced
    result = steer(model, saes, cells, features=[FeatureRef(0, 5)], alphas=[0.0, 2.0], pseudotime=np.arange(12.0))
    assert result.cells.empty
    assert result.results["n_cells"].tolist() == [0, 0]
    assert result.layers.empty


def test_a_feature_that_tracks_pseudotime_is_found_as_a_switch(tiny):
    model, cells, saes = tiny
    profile = _mean_activations(model, cells, saes[1], 1)
    variable = int(np.argmax(profile.std(0)))
    result = steer(model, saes, cells, layers=[1], alphas=[2.0], pseudotime=profile[:, variable],
                   switch_threshold=1.0, max_features=3, gene_names=gene_names(64))
    chosen = result.switch[result.switch["selected"]]
    assert variable in chosen["feature"].tolist()
    assert (chosen["switch_d"].abs() >= 1.0).all()
    row = result.results.query("feature == @variable").iloc[0]
    assert row["n_cells"] > 0 and 0 <= row["fraction_positive"] <= 1
    assert all(name.startswith("GENE") for name in row["top_up"] + row["top_down"])
    assert set(result.layers["layer"]) == {1}


def test_state_shift_is_zero_for_unchanged_logits_and_positive_toward_late():
    early, late = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    clean = np.array([[1.0, 1.0]])
    np.testing.assert_array_equal(state_shift(clean, clean, early, late), [0.0])
    assert state_shift(np.array([[0.5, 1.0]]), clean, early, late)[0] > 0


def test_diffusion_pseudotime_starts_at_the_chosen_root():
    rng = np.random.default_rng(0)
    path = np.linspace(0, 10, 40)
    representation = np.stack([path, np.sin(path)], axis=1) + rng.normal(scale=0.05, size=(40, 2))
    pseudotime, root = diffusion_pseudotime(representation, "cell:7", n_neighbors=5)
    assert root == 7 and pseudotime[7] == 0 and pseudotime.max() == 1
    labels = np.where(path < 2, "stem", "other")
    pseudotime, root = diffusion_pseudotime(representation, "group:stem", labels=labels, n_neighbors=5)
    assert labels[root] == "stem"
    assert np.corrcoef(pseudotime, path)[0, 1] > 0.9


def test_root_rules_and_extremes_reject_bad_input():
    component = np.array([0.3, -1.0, 2.0, 0.1])
    assert choose_root("dc1-min", component) == 1 and choose_root("dc1-max", component) == 2
    with pytest.raises(AtlasError, match="root rule"):
        choose_root("first", component)
    with pytest.raises(AtlasError, match="out of range"):
        choose_root("cell:9", component)
    with pytest.raises(AtlasError, match="needs per-cell labels"):
        choose_root("group:a", component)
    extremes = pseudotime_extremes(np.array([5.0, 1.0, 3.0, 0.0, 4.0, 2.0]), fraction=0.34)
    assert sorted(extremes.early) == [1, 3] and sorted(extremes.late) == [0, 4]
    with pytest.raises(AtlasError, match="too few"):
        pseudotime_extremes(np.arange(3.0))


def test_expression_pseudotime_roots_at_the_first_haematopoietic_stem_cell():
    # the study's rule: the first cell typed "hematopoietic stem cell" (any case), else the DC1 minimum
    from atlas.experiments.pseudotime import expression_pseudotime

    rng = np.random.default_rng(0)
    time = np.linspace(0, 1, 40)
    counts = rng.poisson(np.exp(np.outer(time, rng.normal(size=60)) * 2 + 1)).astype(float)
    expression = np.log1p(counts / counts.sum(axis=1, keepdims=True) * 1e4)
    labels = np.array(["other"] * 40, dtype=object)
    labels[[3, 10]] = ["Hematopoietic stem cell", "hematopoietic stem cell"]
    pseudotime, root = expression_pseudotime(expression, "auto", labels, n_neighbors=5)
    assert root == 3 and pseudotime[3] == 0
    assert abs(np.corrcoef(pseudotime, time)[0, 1]) > 0.8
    _, unlabelled_root = expression_pseudotime(expression, "auto", None, n_neighbors=5)
    _, dc1_root = expression_pseudotime(expression, "dc1-min", None, n_neighbors=5)
    assert unlabelled_root == dc1_root
