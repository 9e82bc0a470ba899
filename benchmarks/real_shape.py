"""Inputs of Geneformer V2-316M's exact shape with random weights: a model directory, SAE atlas and cells on disk.

The shape is what matters for memory and speed: 18 blocks of width 1,152 (18 heads, MLP 4,608), vocabulary 20,275,
TopK SAEs of 4,608 features (k=32) and cells of 2,048 gene tokens. Used by bench_real_shape.py and gpu_check.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from atlas.sae.biosae import write_sae  # noqa: E402
from atlas.sae.topk import TopKSAE  # noqa: E402
from tests.tiny import CLS, EOS, FIRST_GENE, save_tiny_cells  # noqa: E402

V2_316M = {"vocab_size": 20275, "hidden_size": 1152, "num_hidden_layers": 18, "num_attention_heads": 18,
           "intermediate_size": 4608, "max_position_embeddings": 4096}
N_FEATURES, K = 4608, 32


def random_model(seed: int = 0, **overrides: int) -> BertForMaskedLM:
    """A randomly initialised BertForMaskedLM of V2-316M's shape (post-LN, ReLU, pad id 0)."""
    torch.manual_seed(seed)
    config = BertConfig(**{**V2_316M, **overrides}, hidden_act="relu", pad_token_id=0, type_vocab_size=2,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForMaskedLM(config).eval()


def random_cells(n_cells: int, tokens: int, vocab_size: int, seed: int = 0) -> list[np.ndarray]:
    """Rank-value-encoded cells of exactly ``tokens`` tokens (CLS, distinct genes, EOS)."""
    rng = np.random.default_rng(seed)
    return [np.concatenate([[CLS], rng.permutation(vocab_size - FIRST_GENE)[:tokens - 2] + FIRST_GENE, [EOS]])
            .astype(np.int64) for _ in range(n_cells)]


@torch.no_grad()
def random_sae(hidden: torch.Tensor, n_features: int, k: int, seed: int) -> TopKSAE:
    """A TopK SAE with unit-norm random directions (encoder = decoder), centred by the real activation mean."""
    generator = torch.Generator().manual_seed(seed)
    sae = TopKSAE(hidden.shape[1], n_features, k, hidden.mean(dim=0))
    sae.decoder_weight.copy_(torch.randn(n_features, hidden.shape[1], generator=generator))
    sae.normalize_decoder()
    sae.encoder_weight.copy_(sae.decoder_weight)
    return sae


@torch.no_grad()
def write_inputs(root: Path, layers: list[int], tokens: int, n_cells: int = 1, seed: int = 0,
                 **overrides: int) -> Path:
    """Model directory, SAE atlas (``layers``) and cells under ``root``; reused when already there."""
    if (root / "cells").is_dir():
        return root
    model = random_model(seed, **overrides)
    model.save_pretrained(root / "model")
    cells = random_cells(n_cells, tokens, model.config.vocab_size, seed)
    hidden = model(input_ids=torch.as_tensor(cells[0])[None], output_hidden_states=True).hidden_states
    for layer in layers:
        write_sae(root / "saes", layer, random_sae(hidden[layer + 1][0], N_FEATURES, K, seed + layer))
    save_tiny_cells(root / "cells", cells)
    return root
