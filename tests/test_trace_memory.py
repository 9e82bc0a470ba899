"""The batch size chosen from free memory, and memory-efficient attention, on tiny real models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from atlas.cli import cli
from atlas.errors import AtlasError
from atlas.model import load_model
from atlas.trace.engine import trace_cells
from atlas.trace.memory import MAX_BATCH, bytes_per_variant, choose_batch_size, parse_size, resident_memory
from atlas.trace.setup import TraceSetup
from tests.tiny import (
    build_tiny_atlas,
    fit_tiny_sae,
    layer_activations,
    save_tiny_bert,
    save_tiny_cells,
    tiny_bert,
    tiny_cells,
)


@pytest.fixture(scope="module")
def setup() -> TraceSetup:
    torch.set_num_threads(1)
    model = tiny_bert(3, n_layers=3, d_model=32, vocab_size=64, max_length=64)
    cells = tiny_cells(3, n_cells=3)
    activations, _ = layer_activations(model, cells, [0, 1, 2])
    saes = {layer: fit_tiny_sae(activations[layer], 64, 4, seed=layer, steps=5) for layer in (0, 1, 2)}
    return TraceSetup(model, saes, 0, [1, 2])


@pytest.mark.parametrize(("text", "size"), [("8GiB", 8 << 30), ("512M", 512 << 20), ("1.5g", 3 << 29), ("4096", 4096),
                                            ("2 KiB", 2048)])
def test_memory_sizes_are_read_with_binary_units(text, size):
    assert parse_size(text) == size


def test_an_unreadable_memory_size_is_a_user_error():
    with pytest.raises(AtlasError, match="memory size"):
        parse_size("lots")


def test_a_longer_cell_needs_proportionally_more_memory_per_variant(setup):
    assert bytes_per_variant(setup, 200) == 2 * bytes_per_variant(setup, 100)


def test_eager_attention_is_charged_for_its_score_matrix(setup):
    sdpa = bytes_per_variant(setup, 4096)
    setup.model.config._attn_implementation = "eager"
    try:
        eager = bytes_per_variant(setup, 4096)
    finally:
        setup.model.config._attn_implementation = "sdpa"
    heads = setup.model.config.num_attention_heads
    assert eager - sdpa >= 2 * heads * 4096 * 4096 * 4 - 4096 * 4 * 64 * 5


def test_the_batch_is_the_largest_power_of_two_that_fits_the_cap(setup):
    per_variant = bytes_per_variant(setup, 100)
    resident = resident_memory(setup.device)
    # 0.6 of the memory left under the cap must hold 11 variants: the choice is 8, the power of two below.
    cap = resident + int(11.5 * per_variant / 0.6)
    choice = choose_batch_size(setup, 100, cap)
    assert choice.size == 8 and "--max-memory" in choice.reason


def test_without_a_cap_the_batch_is_bounded(setup):
    choice = choose_batch_size(setup, 24)
    assert 1 <= choice.size <= MAX_BATCH and choice.size & (choice.size - 1) == 0 and "free on cpu" in choice.reason


def test_a_cell_too_long_for_the_cap_is_refused_in_one_line(setup):
    with pytest.raises(AtlasError, match="one ablated variant of a 100-token cell needs about"):
        choose_batch_size(setup, 100, resident_memory(setup.device) + 10)


def test_the_loaded_model_uses_scaled_dot_product_attention(tmp_path):
    save_tiny_bert(tmp_path / "model", seed=1)
    assert load_model(tmp_path / "model").config._attn_implementation == "sdpa"


def test_sdpa_and_eager_attention_trace_the_same_effects(setup):
    cells = tiny_cells(5, n_cells=2)
    features = np.arange(64)
    sdpa = trace_cells(setup, features, cells, batch_size=16)
    setup.model.config._attn_implementation = "eager"
    try:
        eager = trace_cells(setup, features, cells, batch_size=16)
    finally:
        setup.model.config._attn_implementation = "sdpa"
    assert torch.equal(sdpa.n, eager.n)
    for layer in sdpa.layers:
        torch.testing.assert_close(sdpa.mean[layer], eager.mean[layer], rtol=1e-4, atol=1e-5)


def test_trace_run_says_which_batch_size_it_chose(tmp_path):
    cells = tiny_cells(4, 4)
    save_tiny_bert(tmp_path / "model", seed=4)
    build_tiny_atlas(tmp_path / "saes", tiny_bert(4), cells, layers=[0, 1, 2, 3], steps=5, seed=4)
    save_tiny_cells(tmp_path / "cells", cells)
    runner = CliRunner()
    planned = runner.invoke(cli, ["trace", "plan", "--model", str(tmp_path / "model"), "--saes",
                                  str(tmp_path / "saes"), "--cells", str(tmp_path / "cells"), "--source-layer", "1",
                                  "--out", str(tmp_path / "run"), "--json"], catch_exceptions=False)
    assert planned.exit_code == 0, planned.output
    done = runner.invoke(cli, ["trace", "run", str(tmp_path / "run"), "--device", "cpu", "--max-memory", "64GiB",
                               "--quiet", "--json"], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["status"] == "finalized" and result["batch_size"] == MAX_BATCH
    assert f"batch size {MAX_BATCH} (auto from" in done.stderr
