"""Source-feature selection, presets and the shard plan."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atlas.catalog import Annotation, CatalogFeature, LayerCatalog, TopGene
from atlas.errors import AtlasError
from atlas.sae.topk import TopKSAE
from atlas.trace.features import (
    active_from_catalog,
    measure_activation_frequency,
    selective_baseline,
)
from atlas.trace.plan import make_plan
from atlas.trace.presets import resolve_layers
from atlas.trace.setup import TraceSetup
from tests.tiny import build_tiny_atlas, layer_activations, tiny_bert, tiny_cells


def feature(index, frequency, annotations=(), genes=12):
    return CatalogFeature(index=index, activation_freq=frequency, annotations=list(annotations),
                          top_genes=[TopGene(g, f"G{g}", 1.0) for g in range(genes)])


CATALOG = LayerCatalog(layer=5, n_features=8, k=2, features=[
    feature(0, 0.0005),
    feature(1, 0.001),
    feature(2, 0.2, [Annotation("GO_BP", "a", 1e-3)]),
    feature(3, 0.2, [Annotation("GO_BP", "b", 1e-3), Annotation("KEGG", "c", 1e-2)]),
    feature(4, 0.005, [Annotation("GO_BP", "d", 1e-9), Annotation("KEGG", "e", 1e-9)]),
    feature(5, 0.3, [Annotation("GO_BP", "f", 1e-8)], genes=5),
    feature(6, 0.3, [Annotation("Reactome", "g", 1e-5)]),
])


def test_active_features_use_the_frequency_threshold_inclusively():
    assert active_from_catalog(CATALOG).tolist() == [1, 2, 3, 4, 5, 6]
    assert active_from_catalog(CATALOG, 0.1).tolist() == [2, 3, 5, 6]


def test_selective_baseline_ranks_by_annotation_quality_among_eligible_features():
    # 3: 2 ontologies -> 20 + 2 + 3 = 25; 6: 10 + 1 + 5 = 16; 2: 10 + 1 + 3 = 14; 4 too rare, 5 too few genes.
    assert selective_baseline(CATALOG, 2).tolist() == [3, 6]
    assert selective_baseline(CATALOG, 10).tolist() == [2, 3, 6]


def test_presets_and_explicit_layers():
    assert resolve_layers("paper-l5", None, None, list(range(18))) == (5, [6, 11, 17])
    assert resolve_layers("full-depth", 15, None, [0, 5, 15, 16, 17]) == (15, [16, 17])
    assert resolve_layers("paper-l5", None, [7], list(range(18))) == (5, [7])
    with pytest.raises(AtlasError, match="needs --source-layer"):
        resolve_layers("full-depth", None, None, [1, 2])


def test_plan_covers_every_feature_and_cell_exactly_once():
    selected = np.array([2, 3, 5, 8, 13, 21, 34])
    units = make_plan(selected, n_cells=5, features_per_shard=3, cells_per_shard=2)
    assert len(units) == 3 * 3
    covered = [(int(f), c) for unit in units for f in unit.features(selected)
               for c in range(unit.first_cell, unit.end_cell)]
    assert sorted(covered) == sorted((int(f), c) for f in selected for c in range(5))
    assert len({unit.name for unit in units}) == len(units)


@pytest.fixture(scope="module")
def tiny_setup(tmp_path_factory):
    torch.set_num_threads(1)
    model, cells = tiny_bert(5, n_layers=3), tiny_cells(5, 4)
    saes = build_tiny_atlas(tmp_path_factory.mktemp("atlas"), model, cells, steps=5, seed=5)
    return TraceSetup(model, saes, 0, [2]), cells


def test_measured_frequencies_equal_the_share_of_gene_positions_where_a_feature_fires(tiny_setup):
    import torch

    setup, cells = tiny_setup
    activations, _ = layer_activations(setup.model, cells, [0])
    with torch.no_grad():
        expected = (setup.saes[0].encode(activations[0]) > 0).double().mean(dim=0).numpy()
    np.testing.assert_allclose(measure_activation_frequency(setup, cells), expected, atol=1e-12)


def test_model_and_inputs_that_do_not_fit_together_are_user_errors(tiny_setup):
    setup, _ = tiny_setup
    with pytest.raises(AtlasError, match="d_model 16"):
        TraceSetup(setup.model, {**setup.saes, 2: TopKSAE(16, 64, 4)}, 0, [2])
    with pytest.raises(AtlasError, match=r"no SAE for layer\(s\) \[1\]"):
        TraceSetup(setup.model, {0: setup.saes[0]}, 0, [1])
    with pytest.raises(AtlasError, match="must lie after source layer"):
        TraceSetup(setup.model, setup.saes, 2, [1])
    with pytest.raises(AtlasError, match="outside the model's vocabulary"):
        setup.input_ids(np.array([2, 5, 9999, 3]))
    with pytest.raises(AtlasError, match="source features must lie in"):
        setup.check_features([0, 10_000])
