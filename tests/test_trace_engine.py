"""The batched engine equals the literal reference engine, and known answers hold (tiny real models)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from atlas.trace.engine import trace_cells
from atlas.trace.reference import reference_trace_cells
from atlas.trace.setup import TraceSetup
from atlas.trace.stats import Thresholds, WelfordState, layer_statistics, significant
from tests.tiny import build_tiny_atlas, tiny_bert, tiny_cells

THRESHOLDS = Thresholds()


@pytest.fixture(scope="module", params=[0, 1], ids=["seed0", "seed1"])
def tiny(request, tmp_path_factory):
    """A 4-layer Geneformer-shaped model, 6 cells and a briefly fitted TopK SAE per layer."""
    torch.set_num_threads(1)
    seed = request.param
    model = tiny_bert(seed)
    cells = tiny_cells(seed, 6)
    saes = build_tiny_atlas(tmp_path_factory.mktemp(f"atlas{seed}"), model, cells, steps=20, seed=seed)
    return model, cells, saes


def edges(state: WelfordState, thresholds: Thresholds = THRESHOLDS) -> dict[tuple[int, int, int], np.ndarray]:
    """(target layer, source feature, target feature) -> (d, mean, std, consistency, p) of significant edges."""
    found = {}
    for layer in state.layers:
        result = layer_statistics(state, layer, thresholds.consistency_mode)
        for row, column in zip(*np.nonzero(significant(result, thresholds)), strict=True):
            found[(layer, int(result.source_features[row]), int(column))] = np.array([
                result.cohens_d[row, column], result.mean[row, column], result.std[row, column],
                result.consistency[row, column], result.p[row, column]])
    return found


def assert_same_edges(batched: WelfordState, reference: WelfordState) -> None:
    """Same edge set and statistics; only pairs whose |d| lies on the threshold itself (within float rounding) may
    fall on either side. Such ties are structural: n = 4 cells with one non-zero change give |d| = 1/sqrt(4) = 0.5."""
    assert torch.equal(batched.n, reference.n)
    a, b = edges(batched), edges(reference)
    for key in set(a) ^ set(b):
        d = (a.get(key) if key in a else b[key])[0]
        assert abs(abs(d) - THRESHOLDS.cohens_d) < 1e-6, f"edge {key} differs between engines (d={d})"
    common = sorted(set(a) & set(b))
    assert len(common) > 20
    got, want = np.array([a[key] for key in common]), np.array([b[key] for key in common])
    np.testing.assert_allclose(got[:, 1:], want[:, 1:], atol=1e-4, rtol=0)          # mean, std, consistency, p
    # d = mean / std is ill-conditioned when std is tiny (two cells with almost equal changes), so d itself is
    # compared where std is not; elsewhere mean and std above already agree within 1e-4.
    conditioned = want[:, 2] > 1e-2
    np.testing.assert_allclose(got[conditioned, 0], want[conditioned, 0], rtol=1e-4, atol=1e-4)
    for layer in batched.layers:
        assert torch.equal(batched.positive[layer], reference.positive[layer])
        torch.testing.assert_close(batched.mean[layer], reference.mean[layer], atol=1e-5, rtol=0)


@pytest.mark.parametrize(("source_layer", "downstream", "batch_size"),
                         [(0, [1, 2, 3], 1), (1, [2, 3], 5), (2, [3], 64), (0, [2], 16)])
def test_batched_engine_equals_the_reference_engine(tiny, source_layer, downstream, batch_size):
    model, cells, saes = tiny
    setup = TraceSetup(model, saes, source_layer, downstream)
    features = np.arange(saes[source_layer].n_features)
    assert_same_edges(trace_cells(setup, features, cells, batch_size=batch_size),
                      reference_trace_cells(setup, features, cells))


def test_cell_shards_merged_equal_one_pass(tiny):
    model, cells, saes = tiny
    setup = TraceSetup(model, saes, 1, [2, 3])
    features = np.arange(0, 128, 3)
    whole = trace_cells(setup, features, cells, batch_size=8)
    parts = [trace_cells(setup, features, cells[start:stop], batch_size=8) for start, stop in [(0, 2), (2, 3), (3, 6)]]
    merged = parts[0].merge(parts[1]).merge(parts[2])
    assert_same_edges(merged, reference_trace_cells(setup, features, cells))
    assert_same_edges(merged, whole)


def test_a_feature_that_is_never_active_has_no_observations_and_no_edges(tiny):
    model, cells, saes = tiny
    saes = {layer: copy.deepcopy(sae) for layer, sae in saes.items()}
    with torch.no_grad():
        saes[1].encoder_bias[7] = -1e6
    setup = TraceSetup(model, saes, 1, [2, 3])
    state = trace_cells(setup, [7, 8, 9], cells)
    assert state.n[0] == 0 and state.n[1:].sum() > 0
    assert not [key for key in edges(state) if key[1] == 7]


def test_ablating_a_feature_with_a_zero_decoder_row_changes_nothing(tiny):
    model, cells, saes = tiny
    saes = {layer: copy.deepcopy(sae) for layer, sae in saes.items()}
    setup = TraceSetup(model, saes, 1, [2, 3])
    active = trace_cells(setup, np.arange(128), cells).n.numpy()
    feature = int(np.argmax(active))
    with torch.no_grad():
        saes[1].decoder_weight[feature] = 0
    for engine in (trace_cells, reference_trace_cells):
        state = engine(setup, [feature], cells)
        assert state.n[0] == active[feature] > 1
        for layer in (2, 3):
            assert not state.mean[layer].any() and not state.m2[layer].any()
        assert edges(state) == {}


def manual_observation(model, sae_source, sae_target, tokens, source_layer, target_layer, feature, overwrite):
    """One cell's measured change, computed from scratch with hooks (independently of both engines)."""
    ids = torch.as_tensor(tokens)[None]
    genes = torch.as_tensor((tokens != 2) & (tokens != 3))
    with torch.no_grad():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
        source = hidden[source_layer + 1][0]
        codes = sae_source.encode(source[genes])
        ablated_codes = codes.clone()
        ablated_codes[:, feature] = 0
        modified = source.clone()
        if overwrite:
            modified[genes] = sae_source.decode(ablated_codes)
        else:
            modified[genes] = source[genes] - codes[:, feature:feature + 1] * sae_source.W_dec[feature]
        captured = {}
        handles = [model.bert.encoder.layer[source_layer].register_forward_hook(lambda *_: modified[None]),
                   model.bert.encoder.layer[target_layer].register_forward_hook(
                       lambda _m, _i, output: captured.setdefault("out", output))]
        model(input_ids=ids)
        for handle in handles:
            handle.remove()
        clean = sae_target.encode(hidden[target_layer + 1][0][genes])
        ablated = sae_target.encode(captured["out"][0][genes])
        return (ablated - clean)[codes[:, feature] > 0].double().mean(dim=0)


def test_the_delta_is_added_to_the_original_hidden_state_not_written_over_it(tiny):
    model, cells, saes = tiny
    setup = TraceSetup(model, saes, 1, [3])
    cell = cells[0]
    state = trace_cells(setup, np.arange(128), [cell])
    feature = int(torch.nonzero(state.n)[0])
    observed = state.mean[3][feature]
    added = manual_observation(model, saes[1], saes[3], cell, 1, 3, feature, overwrite=False)
    overwritten = manual_observation(model, saes[1], saes[3], cell, 1, 3, feature, overwrite=True)
    torch.testing.assert_close(observed, added, atol=1e-5, rtol=0)
    assert (observed - overwritten).abs().max() > 1e-2


def test_cells_without_gene_tokens_are_skipped(tiny):
    model, cells, saes = tiny
    setup = TraceSetup(model, saes, 1, [2])
    state = trace_cells(setup, np.arange(128), [np.array([2, 3])])
    assert state.n.sum() == 0
