"""TopK SAE (Gao et al. 2024): linear encoder, keep the ``k`` largest pre-activations, ReLU, linear decoder."""

from __future__ import annotations

import torch
from torch import nn

from atlas.sae.base import SparseAutoencoder


class TopKSAE(SparseAutoencoder):
    """TopK SAE whose input is centred by a per-layer activation mean (the public SAE atlas architecture)."""

    def __init__(self, d_model: int, n_features: int, k: int, activation_mean: torch.Tensor | None = None) -> None:
        super().__init__()
        if not 0 < k <= n_features:
            raise ValueError(f"k={k} must be in 1..n_features={n_features}")
        self.d_model, self.n_features, self.k = int(d_model), int(n_features), int(k)
        self.encoder_weight = nn.Parameter(torch.zeros(n_features, d_model))
        self.encoder_bias = nn.Parameter(torch.zeros(n_features))
        self.decoder_weight = nn.Parameter(torch.zeros(n_features, d_model))
        self.decoder_bias = nn.Parameter(torch.zeros(d_model))
        mean = torch.zeros(d_model) if activation_mean is None else torch.as_tensor(activation_mean).float()
        self.register_buffer("mean", mean.reshape(d_model).clone())

    @property
    def W_dec(self) -> torch.Tensor:  # noqa: N802
        return self.decoder_weight

    @property
    def b_dec(self) -> torch.Tensor:
        return self.decoder_bias

    @property
    def activation_mean(self) -> torch.Tensor:
        return self.mean

    def pre_activations(self, hidden: torch.Tensor) -> torch.Tensor:
        """Encoder pre-activations of centred inputs, ``(..., n_features)``."""
        return (hidden - self.mean) @ self.encoder_weight.T + self.encoder_bias

    def encode(self, hidden: torch.Tensor) -> torch.Tensor:
        """Dense codes with at most ``k`` positive entries per input."""
        return self.encode_selected(hidden)[0]

    def encode_selected(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Dense codes and the mask of the top-k indices (selected even where ReLU makes the value 0)."""
        pre = self.pre_activations(hidden)
        values, indices = torch.topk(pre, self.k, dim=-1)
        codes = torch.zeros_like(pre).scatter_(-1, indices, torch.relu(values))
        selected = torch.zeros_like(pre, dtype=torch.bool).scatter_(-1, indices, True)
        return codes, selected

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale decoder rows to unit norm (the training-time constraint of the atlas SAEs)."""
        self.decoder_weight.div_(self.decoder_weight.norm(dim=1, keepdim=True).clamp_min(1e-12))
