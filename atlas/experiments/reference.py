"""Reference implementations of the experiments: the literal hook-and-rerun design of the reference study.

One full forward pass (all layers, MLM head) per condition and cell, with forward hooks that edit the member
layers' outputs. They exist to check the batched engines (``ablation``, ``steering``) and to measure their speed-up
in ``benchmarks/bench_experiments.py``, never for production runs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from transformers import BertForMaskedLM

from atlas.experiments.features import FeatureRef
from atlas.sae.base import SparseAutoencoder
from atlas.trace.setup import GENEFORMER_NON_GENE_TOKENS


def _genes(cell: np.ndarray, non_gene_tokens: tuple[int, ...]) -> torch.Tensor:
    return torch.as_tensor(~np.isin(cell, non_gene_tokens))


@torch.no_grad()
def reference_ablation_changes(model: BertForMaskedLM, saes: Mapping[int, SparseAutoencoder],
                               cells: Sequence[np.ndarray], members: Sequence[FeatureRef], target: int,
                               position_members: Sequence[FeatureRef] | None = None, active: str = "topk",
                               non_gene_tokens: tuple[int, ...] = GENEFORMER_NON_GENE_TOKENS) -> np.ndarray:
    """Per cell where one of ``position_members`` (default: the members) is active (``active``: top-k membership or
    positive code): the mean change of every target-layer feature over those active gene positions when
    ``members`` are ablated, ``[cells, n_features]``.

    Each member layer's hook encodes the (already edited) output of its block, so members at later layers see the
    earlier ablations, as in the batched engine.
    """
    position_members = list(position_members or members)
    blocks = model.bert.encoder.layer
    captured: dict[str, torch.Tensor] = {}
    changes = []

    def capture(_module, _inputs, output):
        captured["target"] = output

    def ablation(layer: int, genes: torch.Tensor):
        indices = [m.index for m in members if m.layer == layer]

        def hook(_module, _inputs, output):
            edited = output.clone()
            edited[:, genes] -= saes[layer].encode(output[:, genes])[..., indices] @ saes[layer].W_dec[indices]
            return edited
        return hook

    for cell in cells:
        ids, genes = torch.as_tensor(cell)[None], _genes(cell, non_gene_tokens)
        states = model(input_ids=ids, output_hidden_states=True).hidden_states
        positions = torch.stack([saes[m.layer].encode_active(states[m.layer + 1][0][genes], active)[1][:, m.index]
                                 for m in position_members]).any(0)
        if not positions.any():
            continue
        handles = [blocks[target].register_forward_hook(capture)]
        handles += [blocks[layer].register_forward_hook(ablation(layer, genes)) for layer in {m.layer for m in members}]
        try:
            model(input_ids=ids)
        finally:
            for handle in handles:
                handle.remove()
        clean = saes[target].encode(states[target + 1][0][genes])
        change = saes[target].encode(captured["target"][0][genes]) - clean
        changes.append(change[positions].mean(0).double().numpy())
    return np.stack(changes) if changes else np.zeros((0, saes[target].n_features))


@torch.no_grad()
def reference_steered_logits(model: BertForMaskedLM, sae: SparseAutoencoder, cell: np.ndarray, feature: FeatureRef,
                             alpha: float, non_gene_tokens: tuple[int, ...] = GENEFORMER_NON_GENE_TOKENS
                             ) -> np.ndarray:
    """Mean masked-LM logits over gene positions of one cell with ``h' = h + (alpha-1) a_f W_dec[f]`` at layer f."""
    genes = _genes(cell, non_gene_tokens)

    def steer(_module, _inputs, output):
        edited = output.clone()
        activation = sae.encode(output[:, genes])[..., feature.index]
        edited[:, genes] += (alpha - 1.0) * activation[..., None] * sae.W_dec[feature.index]
        return edited

    handle = model.bert.encoder.layer[feature.layer].register_forward_hook(steer)
    try:
        logits = model(input_ids=torch.as_tensor(cell)[None]).logits[0]
    finally:
        handle.remove()
    return logits[genes].mean(0).double().numpy()
