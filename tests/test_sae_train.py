"""Training TopK SAEs on a model's residual stream and cataloguing their features."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from atlas.catalog import catalog_from_codes, read_catalogs
from atlas.cli import cli
from atlas.errors import AtlasError
from atlas.sae.biosae import load_sae_set
from atlas.sae.train import (
    TrainingConfig,
    build_catalogs,
    catalogs_from_sample,
    explained_variance,
    gene_position_states,
    sample_activations,
    train_layers,
    train_topk_sae,
)
from tests.tiny import gene_names, layer_activations, save_tiny_bert, tiny_bert, tiny_cells

CONFIG = TrainingConfig(expansion=4, k=4, epochs=20, batch_size=64, learning_rate=1e-2, max_positions=10_000)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return tiny_bert(seed=1, n_layers=3, d_model=16)


@pytest.fixture(scope="module")
def cells():
    return tiny_cells(seed=2, n_cells=10)


def test_batched_gene_states_equal_one_cell_at_a_time(model, cells):
    reference, genes = layer_activations(model, cells, [0, 2])
    batches = list(gene_position_states(model, cells, [0, 2], cell_batch_size=4))
    for layer in (0, 2):
        assert torch.allclose(torch.cat([states[layer] for states, _ in batches]), reference[layer], atol=1e-5)
    assert torch.cat([batch_genes for _, batch_genes in batches]).numpy().tolist() == genes.tolist()


def test_max_positions_subsamples_training_activations(model, cells):
    everything = sample_activations(model, cells, [1], CONFIG).activations[1]
    some = sample_activations(model, cells, [1], TrainingConfig(max_positions=40)).activations[1]
    assert everything.shape[0] == sum(len(cell) - 2 for cell in cells)
    assert 10 < some.shape[0] < everything.shape[0]


def test_trained_sae_has_the_reference_shape_and_unit_norm_decoder_rows(model, cells):
    activations = sample_activations(model, cells, [1], CONFIG).activations[1]
    sae = train_topk_sae(activations, CONFIG)
    assert (sae.d_model, sae.n_features, sae.k) == (16, 64, 4)
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(64), atol=1e-5)
    assert torch.allclose(sae.activation_mean, activations.mean(dim=0))
    assert int((sae.encode(activations) > 0).sum(dim=1).max()) <= 4


def test_training_improves_reconstruction(model, cells):
    activations = sample_activations(model, cells, [1], CONFIG).activations[1]
    untrained = train_topk_sae(activations, TrainingConfig(expansion=4, k=4, epochs=0))
    trained = train_topk_sae(activations, CONFIG)
    assert explained_variance(trained, activations) > explained_variance(untrained, activations) + 0.1


def test_streamed_catalog_equals_the_catalog_of_all_codes(model, cells):
    activations, genes = layer_activations(model, cells, [2])
    sae = train_topk_sae(activations[2], CONFIG)
    names = gene_names(model.config.vocab_size)
    streamed = build_catalogs(model, cells, {2: sae}, names, top_n=5, cell_batch_size=3)[2]
    with torch.no_grad():
        expected = catalog_from_codes(sae.encode(activations[2]).numpy(), genes, 2, 4, names, top_n=5)
    for got, want in zip(streamed.features, expected.features, strict=True):
        assert got.fire_count == want.fire_count
        assert got.activation_freq == pytest.approx(want.activation_freq)
        assert [gene.gene_id for gene in got.top_genes] == [gene.gene_id for gene in want.top_genes]
        assert [gene.weight for gene in got.top_genes] == pytest.approx([gene.weight for gene in want.top_genes],
                                                                        rel=1e-4)


def test_catalog_from_a_complete_sample_equals_the_catalog_of_a_model_pass(model, cells):
    sample = sample_activations(model, cells, [2], CONFIG)
    assert sample.complete
    sae = train_topk_sae(sample.activations[2], CONFIG)
    names = gene_names(model.config.vocab_size)
    stored = catalogs_from_sample(sample, {2: sae}, model.config.vocab_size, names, top_n=5, batch_size=7)[2]
    rerun = build_catalogs(model, cells, {2: sae}, names, top_n=5)[2]
    assert [f.fire_count for f in stored.features] == [f.fire_count for f in rerun.features]
    assert [[g.gene_id for g in f.top_genes] for f in stored.features] == [
        [g.gene_id for g in f.top_genes] for f in rerun.features]


def test_train_layers_returns_one_sae_and_catalog_per_layer(model, cells):
    trained = train_layers(model, cells, [0, 2], gene_names(model.config.vocab_size), CONFIG)
    assert [layer.layer for layer in trained] == [0, 2]
    for layer in trained:
        assert layer.catalog.layer == layer.layer and layer.catalog.n_alive > 0
        alive = [feature for feature in layer.catalog.features if not feature.is_dead]
        assert all(gene.gene_name.startswith("GENE") for feature in alive for gene in feature.top_genes)
        assert sum(feature.fire_count for feature in layer.catalog.features) <= 4 * layer.n_positions


def test_layers_outside_the_model_are_a_clear_error(model, cells):
    with pytest.raises(AtlasError, match="not in 0..2"):
        train_layers(model, cells, [3], {}, CONFIG)


def test_k_larger_than_the_dictionary_is_a_clear_error(model, cells):
    activations = torch.as_tensor(np.zeros((4, 16), dtype=np.float32))
    with pytest.raises(AtlasError, match="k=100"):
        train_topk_sae(activations, TrainingConfig(expansion=1, k=100))


def write_model_and_cells(tmp_path, cells):
    save_tiny_bert(tmp_path / "model", seed=1, n_layers=3, d_model=16)
    datasets.Dataset.from_dict({"input_ids": [cell.tolist() for cell in cells]}).save_to_disk(str(tmp_path / "cells"))


def test_sae_train_command_writes_a_loadable_atlas(tmp_path, cells):
    write_model_and_cells(tmp_path, cells)
    result = CliRunner().invoke(cli, [
        "sae", "train", "--model", str(tmp_path / "model"), "--cells", str(tmp_path / "cells"), "--layers", "0,2",
        "-k", "4", "--epochs", "3", "--batch-size", "64", "--out", str(tmp_path / "saes"), "--device", "cpu", "--json"])
    assert result.exit_code == 0, result.output
    saes = load_sae_set(tmp_path / "saes")
    catalogs = read_catalogs(tmp_path / "saes")
    assert sorted(saes) == sorted(catalogs) == [0, 2]
    assert (saes[0].n_features, saes[0].k) == (64, 4)
    assert (tmp_path / "saes" / "layer02_x4_k4" / "feature_catalog.json").is_file()


def test_sae_train_command_rejects_layers_outside_the_model(tmp_path, cells):
    write_model_and_cells(tmp_path, cells)
    result = CliRunner().invoke(cli, ["sae", "train", "--model", str(tmp_path / "model"), "--cells",
                                      str(tmp_path / "cells"), "--layers", "1-5", "--out", str(tmp_path / "saes")])
    assert result.exit_code != 0
    assert "not in 0..2" in str(result.exception)
