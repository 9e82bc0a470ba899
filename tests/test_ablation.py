"""Combinatorial ablation on a tiny real model: identities that must hold whatever the weights."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from atlas.errors import AtlasError
from atlas.experiments.ablation import ablate
from atlas.experiments.features import FeatureRef, FeatureSet, parse_feature_set
from atlas.experiments.interactions import moebius
from atlas.experiments.reference import reference_ablation_changes
from atlas.trace.engine import trace_cells
from atlas.trace.setup import TraceSetup
from atlas.trace.stats import layer_statistics
from tests.tiny import fit_tiny_sae, layer_activations, tiny_bert, tiny_cells

TARGET = 3


@pytest.fixture(scope="module")
def tiny():
    """A 4-layer tiny BERT, 8 cells and a TopK SAE (128 features, k=4) for every layer."""
    torch.set_num_threads(1)
    model = tiny_bert(seed=0)
    cells = tiny_cells(seed=1, n_cells=8)
    activations, _ = layer_activations(model, cells, [0, 1, 2, 3])
    saes = {layer: fit_tiny_sae(activations[layer], 128, 4, seed=layer, steps=40) for layer in range(4)}
    return model, cells, saes


def _active_features(model, cells, saes, layer: int, count: int) -> list[int]:
    """The `count` most frequently active features of a layer over the cells."""
    activations, _ = layer_activations(model, cells, [layer])
    with torch.no_grad():
        frequency = (saes[layer].encode(activations[layer]) > 0).float().mean(dim=0)
    return torch.argsort(frequency, descending=True)[:count].tolist()


def test_a_set_of_one_feature_equals_the_single_feature_ablation_of_the_tracer(tiny):
    model, cells, saes = tiny
    feature = FeatureRef(1, _active_features(model, cells, saes, 1, 1)[0])
    result = ablate(model, saes, cells, [FeatureSet("one", (feature,))], TARGET)
    traced = layer_statistics(trace_cells(TraceSetup(model, saes, 1, [TARGET]), [feature.index], cells), TARGET)
    effect = result.effects[0]
    assert effect.n_cells == traced.n[0]
    np.testing.assert_allclose(effect.mean[1], traced.mean[0], atol=1e-6)
    np.testing.assert_allclose(effect.std[1], traced.std[0], atol=1e-6)
    np.testing.assert_allclose(effect.consistency[1], traced.consistency[0])
    strong = np.abs(traced.cohens_d[0]) > 0.5
    assert strong.any()
    np.testing.assert_allclose(effect.d[1][strong], traced.cohens_d[0][strong], rtol=1e-4)
    assert set(result.targets["redundancy"].round(12)) == {1.0}
    assert set(result.targets["class"]) == {"additive"}


@pytest.mark.parametrize("definition", ["study", "whole-set"])
def test_each_condition_ablates_its_members_at_their_own_layers_in_one_forward(tiny, definition):
    # study: a condition is averaged over its own members' active positions; whole-set: over the whole set's
    model, cells, saes = tiny
    first = FeatureRef(0, _active_features(model, cells, saes, 0, 1)[0])
    second = FeatureRef(2, _active_features(model, cells, saes, 2, 1)[0])
    result = ablate(model, saes, cells, [FeatureSet("pair", (first, second))], TARGET, definition=definition)
    assert (np.abs(result.effects[0].mean[1:]).max(axis=1) > 1e-3).all()
    for mask, members in ((1, [first]), (2, [second]), (3, [first, second])):
        positions = members if definition == "study" else [first, second]
        reference = reference_ablation_changes(model, saes, cells, members, TARGET, position_members=positions)
        np.testing.assert_allclose(result.effects[0].mean[mask], reference.mean(0), atol=1e-5)
        assert result.effects[0].n_by_condition[mask] == len(reference)


def test_the_batched_path_equals_one_condition_at_a_time(tiny):
    model, cells, saes = tiny
    top = _active_features(model, cells, saes, 1, 3)
    sets = [FeatureSet("triplet", (FeatureRef(1, top[0]), FeatureRef(1, top[1]), FeatureRef(2, top[2]))),
            FeatureSet("pair", (FeatureRef(0, 5), FeatureRef(1, top[1])))]
    batched = ablate(model, saes, cells, sets, TARGET, batch_size=64)
    single = ablate(model, saes, cells, sets, TARGET, batch_size=1)
    for fast, slow in zip(batched.effects, single.effects, strict=True):
        np.testing.assert_allclose(fast.mean, slow.mean, atol=1e-5)
        np.testing.assert_allclose(fast.std, slow.std, atol=1e-5)
    assert batched.targets[["set_id", "target_feature"]].equals(single.targets[["set_id", "target_feature"]])


def test_ablating_a_never_active_feature_changes_nothing(tiny):
    model, cells, saes = tiny
    saes = dict(saes)
    silenced = copy.deepcopy(saes[1])
    never = _active_features(model, cells, saes, 1, 2)[1]
    with torch.no_grad():
        silenced.encoder_bias[never] = -1e4
    saes[1] = silenced
    active = FeatureRef(1, _active_features(model, cells, saes, 1, 1)[0])
    result = ablate(model, saes, cells, [FeatureSet("never", (FeatureRef(1, never),)),
                                         FeatureSet("with", (active, FeatureRef(1, never)))], TARGET)
    alone, together = result.effects
    assert alone.n_cells == 0 and not alone.mean.any() and not alone.d.any()
    assert result.sets.loc[0, "n_targets"] == 0
    np.testing.assert_array_equal(together.mean[2], 0.0)
    np.testing.assert_allclose(together.mean[3], together.mean[1], atol=1e-6)


@pytest.mark.parametrize("definition", ["study", "whole-set"])
def test_interaction_terms_of_a_real_triplet_satisfy_inclusion_exclusion(tiny, definition):
    model, cells, saes = tiny
    members = tuple(FeatureRef(1, index) for index in _active_features(model, cells, saes, 1, 3))
    result = ablate(model, saes, cells, [FeatureSet("t", members)], TARGET, definition=definition)
    d = result.effects[0].d
    targets = result.targets["target_feature"].to_numpy()
    assert len(targets) > 0
    terms = np.abs(d) if definition == "study" else d  # the study's interaction is over |d|
    expected = terms[7] - terms[3] - terms[5] - terms[6] + terms[1] + terms[2] + terms[4]
    np.testing.assert_allclose(result.targets["interaction"], expected[targets], rtol=0, atol=1e-12)
    np.testing.assert_allclose(moebius(d)[1:].sum(0), d[7], rtol=0, atol=1e-9)
    assert sorted(result.orders["order"]) == [1, 2, 3]


def test_bad_sets_are_one_line_user_errors(tiny):
    model, cells, saes = tiny
    with pytest.raises(AtlasError, match="not before the target layer"):
        ablate(model, saes, cells, [parse_feature_set("3:1", "s")], TARGET)
    with pytest.raises(AtlasError, match="outside layer 1"):
        ablate(model, saes, cells, [parse_feature_set("1:999", "s")], TARGET)
    with pytest.raises(AtlasError, match="names a feature twice"):
        parse_feature_set("1:2,L1:F2", "s")
