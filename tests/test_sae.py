"""The model loader, the SAE interface, the TopK SAE and the public-atlas checkpoint adapter."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from atlas.errors import AtlasError
from atlas.model import d_model, encoder_layers, load_model, n_layers
from atlas.sae.biosae import find_layer_dirs, load_sae, load_sae_set, write_sae
from atlas.sae.topk import TopKSAE
from tests.tiny import fit_tiny_sae, layer_activations, save_tiny_bert, tiny_bert, tiny_cells


def random_sae(seed: int = 0, d: int = 8, n_features: int = 32, k: int = 4) -> TopKSAE:
    generator = torch.Generator().manual_seed(seed)
    sae = TopKSAE(d, n_features, k, torch.randn(d, generator=generator))
    with torch.no_grad():
        for parameter in sae.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return sae


def test_load_model_reads_a_local_directory_and_matches_the_saved_weights(tmp_path):
    path = save_tiny_bert(tmp_path / "model", seed=3, n_layers=3, d_model=16, n_heads=2)
    model = load_model(path)
    reference = tiny_bert(3, n_layers=3, d_model=16, n_heads=2)
    cell = torch.as_tensor(tiny_cells(1, 1)[0])[None]
    assert (d_model(model), n_layers(model), len(encoder_layers(model))) == (16, 3, 3)
    torch.testing.assert_close(model(input_ids=cell).logits, reference(input_ids=cell).logits)


def test_load_model_refuses_a_directory_without_config(tmp_path):
    with pytest.raises(AtlasError, match="no config.json"):
        load_model(tmp_path)


def test_topk_encode_keeps_at_most_k_nonnegative_codes_from_centred_input():
    sae = random_sae()
    hidden = torch.randn(10, 8)
    codes = sae.encode(hidden)
    assert ((codes > 0).sum(dim=-1) <= sae.k).all() and (codes >= 0).all()
    pre = (hidden - sae.activation_mean) @ sae.encoder_weight.T + sae.encoder_bias
    top = torch.topk(pre, sae.k, dim=-1)
    torch.testing.assert_close(codes.gather(-1, top.indices), torch.relu(top.values))


def test_zeroing_a_feature_changes_the_reconstruction_by_its_decoder_row():
    sae = random_sae(1)
    codes = sae.encode(torch.randn(6, 8))
    ablated = codes.clone()
    ablated[:, 5] = 0
    torch.testing.assert_close(sae.decode(ablated) - sae.decode(codes), -codes[:, 5:6] * sae.W_dec[5])


def test_checkpoint_round_trip_uses_the_public_key_names_and_layout(tmp_path):
    sae = random_sae(2)
    layer_dir = write_sae(tmp_path, 7, sae)
    assert layer_dir.name == "layer07_x4_k4"
    checkpoint = torch.load(layer_dir / "sae_final.pt", weights_only=True)
    assert set(checkpoint["model_state_dict"]) == {"W_enc.weight", "W_enc.bias", "W_dec.weight", "W_dec.bias"}
    assert checkpoint["model_state_dict"]["W_dec.weight"].shape == (8, 32)
    assert (checkpoint["d_model"], checkpoint["n_features"], checkpoint["k"]) == (8, 32, 4)
    loaded = load_sae(layer_dir)
    hidden = torch.randn(5, 8)
    torch.testing.assert_close(loaded.encode(hidden), sae.encode(hidden))
    torch.testing.assert_close(loaded.decode(loaded.encode(hidden)), sae.decode(sae.encode(hidden)))


def test_checkpoint_with_wrong_shapes_or_pickled_objects_is_refused(tmp_path):
    layer_dir = write_sae(tmp_path, 1, random_sae())
    np.save(layer_dir / "activation_mean.npy", np.zeros(9, dtype=np.float32))
    with pytest.raises(AtlasError, match="shape"):
        load_sae(layer_dir)
    torch.save({"model_state_dict": {}, "d_model": 8, "n_features": 32, "k": 4, "evil": object()},
               layer_dir / "sae_final.pt")
    with pytest.raises(AtlasError, match="weights-only"):
        load_sae(layer_dir)


def test_sae_set_reports_missing_layers_and_ambiguous_directories(tmp_path):
    write_sae(tmp_path, 0, random_sae())
    write_sae(tmp_path, 2, random_sae())
    assert sorted(load_sae_set(tmp_path)) == [0, 2]
    with pytest.raises(AtlasError, match=r"layer\(s\) \[1\]"):
        load_sae_set(tmp_path, [0, 1])
    write_sae(tmp_path, 2, random_sae(k=8))
    with pytest.raises(AtlasError, match="two SAEs for layer 2"):
        find_layer_dirs(tmp_path)


def test_a_briefly_fitted_tiny_sae_reconstructs_better_than_the_mean():
    model = tiny_bert(0, n_layers=2)
    activations, _ = layer_activations(model, tiny_cells(0, 4), [1])
    sae = fit_tiny_sae(activations[1], 64, 8, steps=60)
    with torch.no_grad():
        error = (sae(activations[1]) - activations[1]).pow(2).mean()
    baseline = (activations[1] - activations[1].mean(dim=0)).pow(2).mean()
    assert error < 0.5 * baseline
