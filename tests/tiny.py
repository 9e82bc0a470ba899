"""Factories for tiny, real, Geneformer-shaped models, cells and SAEs that tests (and the demo) build locally.

Token ids follow Geneformer: 0 pad, 1 mask, 2 CLS, 3 EOS, genes from 4. Everything is seeded, so the same call
builds the same weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM

from atlas.catalog import Annotation, catalog_from_codes, write_layer_catalog
from atlas.sae.biosae import write_sae
from atlas.sae.topk import TopKSAE

PAD, MASK, CLS, EOS = 0, 1, 2, 3
FIRST_GENE = 4


def tiny_bert(seed: int = 0, n_layers: int = 4, d_model: int = 32, n_heads: int = 4, vocab_size: int = 64,
              max_length: int = 128, intermediate: int | None = None) -> BertForMaskedLM:
    """A randomly initialised ``BertForMaskedLM`` with Geneformer's shape (post-LN BERT, ReLU, pad id 0)."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=d_model, num_hidden_layers=n_layers,
                        num_attention_heads=n_heads, intermediate_size=intermediate or 4 * d_model,
                        hidden_act="relu", max_position_embeddings=max_length, pad_token_id=PAD,
                        type_vocab_size=2, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForMaskedLM(config).eval()


def save_tiny_bert(path: str | Path, seed: int = 0, **shape) -> Path:
    """Build ``tiny_bert(seed, **shape)`` and save it as a Hugging Face model directory."""
    path = Path(path)
    tiny_bert(seed, **shape).save_pretrained(path)
    return path


def tiny_cells(seed: int = 0, n_cells: int = 6, vocab_size: int = 64, min_genes: int = 8, max_genes: int = 24
               ) -> list[np.ndarray]:
    """Rank-value-encoded cells: CLS, distinct gene tokens, EOS (int64), of random lengths."""
    rng = np.random.default_rng(seed)
    n_genes = vocab_size - FIRST_GENE
    cells = []
    for _ in range(n_cells):
        length = int(rng.integers(min_genes, min(max_genes, n_genes) + 1))
        genes = rng.permutation(n_genes)[:length] + FIRST_GENE
        cells.append(np.concatenate([[CLS], genes, [EOS]]).astype(np.int64))
    return cells


@torch.no_grad()
def layer_activations(model: BertForMaskedLM, cells: list[np.ndarray], layers: list[int]
                      ) -> tuple[dict[int, torch.Tensor], np.ndarray]:
    """Hidden states of ``layers`` at gene positions of all cells, and the gene token of each row."""
    captured: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    genes = []
    for cell in cells:
        # No hooks are involved, so hidden_states[layer + 1] is exactly block `layer`'s output.
        hidden = model(input_ids=torch.as_tensor(cell)[None], output_hidden_states=True).hidden_states
        gene_rows = torch.as_tensor((cell != CLS) & (cell != EOS))
        for layer in layers:
            captured[layer].append(hidden[layer + 1][0][gene_rows])
        genes.append(cell[gene_rows.numpy()])
    return {layer: torch.cat(rows) for layer, rows in captured.items()}, np.concatenate(genes)


def fit_tiny_sae(activations: torch.Tensor, n_features: int, k: int, seed: int = 0, steps: int = 60) -> TopKSAE:
    """A TopK SAE fitted briefly (Adam, unit-norm decoder rows) to ``activations`` ``(rows, d_model)``."""
    generator = torch.Generator().manual_seed(seed)
    d_model = activations.shape[1]
    sae = TopKSAE(d_model, n_features, k, activations.mean(dim=0))
    with torch.no_grad():
        sae.decoder_weight.copy_(torch.randn(n_features, d_model, generator=generator))
        sae.normalize_decoder()
        sae.encoder_weight.copy_(sae.decoder_weight)
    optimizer = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = (sae(activations) - activations).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        sae.normalize_decoder()
    return sae.eval()


def gene_names(vocab_size: int) -> dict[int, str]:
    """Synthetic gene symbols ``GENE<token>`` for every gene token."""
    return {token: f"GENE{token}" for token in range(FIRST_GENE, vocab_size)}


def build_tiny_atlas(root: str | Path, model: BertForMaskedLM, cells: list[np.ndarray], layers: list[int] | None = None,
                     expansion: int = 4, k: int = 4, seed: int = 0, steps: int = 60) -> dict[int, TopKSAE]:
    """Fit one TopK SAE per layer and write the public atlas layout (checkpoints, means, catalogs, annotations).

    Every third alive feature gets a synthetic GO_BP annotation of its two top genes, so annotated and unannotated
    features both exist.
    """
    layers = list(range(model.config.num_hidden_layers)) if layers is None else layers
    activations, genes = layer_activations(model, cells, layers)
    names = gene_names(model.config.vocab_size)
    saes = {}
    for layer in layers:
        sae = fit_tiny_sae(activations[layer], expansion * model.config.hidden_size, k, seed + layer, steps)
        layer_dir = write_sae(root, layer, sae)
        with torch.no_grad():
            codes = sae.encode(activations[layer]).numpy()
        catalog = catalog_from_codes(codes, genes, layer, k, names)
        for feature in catalog.features:
            if not feature.is_dead and feature.index % 3 == 0 and len(feature.top_genes) >= 2:
                top = [gene.gene_name for gene in feature.top_genes[:2]]
                feature.annotations = [Annotation("GO_BP", f"tiny process {feature.index}",
                                                  p_adjusted=0.001 * (1 + feature.index % 7), odds_ratio=5.0,
                                                  n_overlap=2, overlap_genes=top)]
        write_layer_catalog(layer_dir, catalog)
        saes[layer] = sae
    return saes


def save_tiny_cells(path: str | Path, cells: list[np.ndarray]) -> Path:
    """Write cells as a tokenized Geneformer dataset (a Hugging Face ``datasets`` directory with ``input_ids``)."""
    import datasets

    path = Path(path)
    datasets.Dataset.from_dict({"input_ids": [cell.tolist() for cell in cells],
                                "length": [len(cell) for cell in cells]}).save_to_disk(str(path))
    return path


def build_tiny_inputs(root: str | Path, seed: int = 4, n_cells: int = 12, layers: tuple[int, ...] = (0, 1, 2, 3),
                      steps: int = 20) -> Path:
    """``root/model`` (a tiny BertForMaskedLM), ``root/saes`` (an SAE atlas of ``layers``) and ``root/cells`` (a
    tokenized dataset) on disk: the inputs of every CLI-level test."""
    root = Path(root)
    torch.set_num_threads(1)
    cells = tiny_cells(seed, n_cells)
    save_tiny_bert(root / "model", seed=seed)
    build_tiny_atlas(root / "saes", tiny_bert(seed), cells, layers=list(layers), steps=steps, seed=seed)
    save_tiny_cells(root / "cells", cells)
    return root
