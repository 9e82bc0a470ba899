"""What a trace needs: the model, the SAEs of the source and downstream layers, and which positions are genes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from transformers import BertForMaskedLM

from atlas.errors import AtlasError
from atlas.model import d_model, encoder_layers, n_layers
from atlas.sae.base import SparseAutoencoder, check_active_rule

# Geneformer's <cls> and <eos>: the SAEs were trained on gene positions only, and the reference measures only there.
GENEFORMER_NON_GENE_TOKENS = (2, 3)


@dataclass
class TraceSetup:
    """A model with per-layer SAEs, one source layer and the downstream layers measured from it.

    ``active`` says at which positions a source feature counts as active (``atlas.sae.base.ACTIVE_RULES``): the
    positions its change is averaged over, and the cells it is measured in.
    """

    model: BertForMaskedLM
    saes: dict[int, SparseAutoencoder]
    source_layer: int
    downstream_layers: list[int]
    non_gene_tokens: tuple[int, ...] = GENEFORMER_NON_GENE_TOKENS
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    active: str = "topk"

    def __post_init__(self) -> None:
        try:
            check_active_rule(self.active)
        except ValueError as error:
            raise AtlasError(str(error)) from None
        self.downstream_layers = sorted(set(self.downstream_layers))
        depth = n_layers(self.model)
        if not 0 <= self.source_layer < depth:
            raise AtlasError(f"source layer {self.source_layer} is outside the model's layers 0..{depth - 1}")
        if not self.downstream_layers:
            raise AtlasError("no downstream layer to measure")
        bad = [layer for layer in self.downstream_layers if not self.source_layer < layer < depth]
        if bad:
            raise AtlasError(f"downstream layers {bad} must lie after source layer {self.source_layer} "
                             f"and before {depth}")
        missing = [layer for layer in [self.source_layer, *self.downstream_layers] if layer not in self.saes]
        if missing:
            raise AtlasError(f"no SAE for layer(s) {missing}")
        width = d_model(self.model)
        for layer in [self.source_layer, *self.downstream_layers]:
            if self.saes[layer].d_model != width:
                raise AtlasError(f"SAE of layer {layer} has d_model {self.saes[layer].d_model}, "
                                 f"the model's residual stream is {width} wide")

    @property
    def source_sae(self) -> SparseAutoencoder:
        return self.saes[self.source_layer]

    @property
    def last_layer(self) -> int:
        """The last layer any measurement needs: nothing after it is computed."""
        return self.downstream_layers[-1]

    @property
    def layer_widths(self) -> dict[int, int]:
        """Downstream layer -> number of SAE features."""
        return {layer: self.saes[layer].n_features for layer in self.downstream_layers}

    def check_features(self, features) -> np.ndarray:
        """Sorted unique source features, refused when outside the source SAE."""
        features = np.unique(np.asarray(features, dtype=np.int64))
        limit = self.source_sae.n_features
        if features.size and (features[0] < 0 or features[-1] >= limit):
            raise AtlasError(f"source features must lie in 0..{limit - 1} (layer {self.source_layer} SAE)")
        return features

    def input_ids(self, tokens: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(1, T)`` input ids on the device and the positions of gene tokens."""
        ids = torch.as_tensor(np.asarray(tokens, dtype=np.int64), device=self.device)
        vocabulary = self.model.config.vocab_size
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocabulary):
            raise AtlasError(f"a cell has token ids outside the model's vocabulary 0..{vocabulary - 1}")
        special = torch.as_tensor(self.non_gene_tokens, device=self.device)
        return ids[None], torch.nonzero(~torch.isin(ids, special)).squeeze(1)

    def blocks(self) -> torch.nn.ModuleList:
        return encoder_layers(self.model)
