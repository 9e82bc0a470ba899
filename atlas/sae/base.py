"""The small SAE interface every architecture implements and every consumer (tracing, experiments) relies on.

Conventions: inputs are residual-stream vectors in the model's own space; the SAE centres them by its
``activation_mean`` itself, and ``decode`` returns vectors in the model's space again. ``W_dec`` has one row per
feature (``W_dec[f]`` is feature ``f``'s direction), so zeroing feature ``f`` changes a reconstruction by
``-z[:, f] (outer) W_dec[f]``.

Which features are *active* at an input is a definition, recorded with every result (:data:`ACTIVE_RULES`):
``topk`` (the reference study's code) counts the features the encoder selected, e.g. the top-k indices of a TopK
SAE, even where ReLU made the value 0; ``positive`` counts the features whose code is above 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from atlas.runformat import ACTIVE_RULES


def check_active_rule(rule: str) -> str:
    """``rule`` when it is one of :data:`ACTIVE_RULES`, else a ValueError naming them."""
    if rule not in ACTIVE_RULES:
        raise ValueError(f"active rule {rule!r} is not one of {', '.join(ACTIVE_RULES)}")
    return rule


class SparseAutoencoder(nn.Module, ABC):
    """A dictionary of ``n_features`` directions over a ``d_model``-wide residual stream, ``k`` active per input."""

    d_model: int
    n_features: int
    k: int

    @property
    @abstractmethod
    def W_dec(self) -> torch.Tensor:  # noqa: N802 - the field's name in the SAE literature
        """Decoder directions, shape ``(n_features, d_model)``."""

    @property
    @abstractmethod
    def b_dec(self) -> torch.Tensor:
        """Decoder bias, shape ``(d_model,)``."""

    @property
    @abstractmethod
    def activation_mean(self) -> torch.Tensor:
        """Per-dimension mean subtracted from inputs before encoding, shape ``(d_model,)``."""

    @abstractmethod
    def encode(self, hidden: torch.Tensor) -> torch.Tensor:
        """Feature activations ``(..., n_features)`` of residual-stream vectors ``(..., d_model)``."""

    def encode_selected(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes and the boolean mask of the features the encoder selected (default: the positive codes)."""
        codes = self.encode(hidden)
        return codes, codes > 0

    def encode_active(self, hidden: torch.Tensor, rule: str = "topk") -> tuple[torch.Tensor, torch.Tensor]:
        """Codes and the boolean ``(..., n_features)`` mask of the active features under ``rule``."""
        if check_active_rule(rule) == "positive":
            codes = self.encode(hidden)
            return codes, codes > 0
        return self.encode_selected(hidden)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstruction in the model's space: ``codes @ W_dec + b_dec + activation_mean``."""
        return codes @ self.W_dec + self.b_dec + self.activation_mean

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Reconstruct residual-stream vectors."""
        return self.decode(self.encode(hidden))
