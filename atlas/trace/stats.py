"""Edge statistics: Welford accumulators on the device, exact Chan merge, Cohen's d, consistency, t-test p, BH q.

One observation is one cell: the change of every downstream feature, averaged over the positions where the source
feature was active in that cell. Per (source feature, downstream layer, target feature) we keep n, mean, M2 and the
counts of positive and negative observations, which is everything the reference definitions need:

- Cohen's d = mean / max(std, 1e-10), std the sample standard deviation (n - 1);
- consistency ``reference`` (default, what produced the study's 1,393,850 edges) = max(#>0, n - #>0) / n, so zero
  changes count on the negative side; ``signed`` = fraction of cells whose change has the sign of the mean;
- p = two-sided one-sample t-test of mean 0: t = d * sqrt(n), df = n - 1;
- q = Benjamini-Hochberg over every test of the run (all target features of all traced source features with n >= 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.special import stdtr

CONSISTENCY_MODES = ("reference", "signed")
MIN_STD = 1e-10


@dataclass
class Thresholds:
    """Significance thresholds of an edge (defaults: the reference study's)."""

    cohens_d: float = 0.5
    consistency: float = 0.7
    consistency_mode: str = "reference"

    def __post_init__(self) -> None:
        if self.consistency_mode not in CONSISTENCY_MODES:
            raise ValueError(f"consistency_mode must be one of {CONSISTENCY_MODES}")

    def as_dict(self) -> dict[str, float | str]:
        """The manifest's ``thresholds`` (the key ``consistency_definition`` records which consistency was used)."""
        return {"cohens_d": self.cohens_d, "consistency": self.consistency,
                "consistency_definition": self.consistency_mode}


def accumulator_dtype(device: torch.device) -> torch.dtype:
    """float64 where the device has it (CPU, CUDA); MPS has no float64."""
    return torch.float32 if torch.device(device).type == "mps" else torch.float64


@dataclass
class WelfordState:
    """Running statistics of the cell deltas of ``source_features`` into each downstream layer's features."""

    source_features: np.ndarray                  # (S,) int64, sorted
    n: torch.Tensor                              # (S,) int64 cells in which the source feature was active
    mean: dict[int, torch.Tensor]                # layer -> (S, F_layer)
    m2: dict[int, torch.Tensor]
    positive: dict[int, torch.Tensor]            # layer -> (S, F_layer) int32 count of deltas > 0
    negative: dict[int, torch.Tensor]            # layer -> (S, F_layer) int32 count of deltas < 0
    _row_of: dict[int, int] = field(default_factory=dict, repr=False)

    @classmethod
    def empty(cls, source_features, layer_widths: dict[int, int], device: torch.device | str = "cpu"
              ) -> WelfordState:
        """Zeroed accumulators for ``source_features`` and downstream ``{layer: n_features}``."""
        features = np.asarray(sorted(int(f) for f in source_features), dtype=np.int64)
        dtype = accumulator_dtype(torch.device(device))
        shape = {layer: (len(features), width) for layer, width in layer_widths.items()}
        return cls(
            source_features=features, n=torch.zeros(len(features), dtype=torch.int64, device=device),
            mean={layer: torch.zeros(s, dtype=dtype, device=device) for layer, s in shape.items()},
            m2={layer: torch.zeros(s, dtype=dtype, device=device) for layer, s in shape.items()},
            positive={layer: torch.zeros(s, dtype=torch.int32, device=device) for layer, s in shape.items()},
            negative={layer: torch.zeros(s, dtype=torch.int32, device=device) for layer, s in shape.items()})

    @property
    def layers(self) -> list[int]:
        return sorted(self.mean)

    def rows(self, features) -> torch.Tensor:
        """Row indices of source features in this state."""
        if not self._row_of:
            self._row_of = {int(f): i for i, f in enumerate(self.source_features)}
        return torch.as_tensor([self._row_of[int(f)] for f in features], dtype=torch.int64, device=self.n.device)

    def update(self, rows: torch.Tensor, deltas: dict[int, torch.Tensor]) -> None:
        """Add one cell's observation for each of ``rows`` (distinct); ``deltas[layer]`` is ``(len(rows), F)``."""
        self.n[rows] += 1
        count = self.n[rows].unsqueeze(1)
        for layer, observed in deltas.items():
            observed = observed.to(self.mean[layer].dtype)
            mean = self.mean[layer][rows]
            step = observed - mean
            mean = mean + step / count
            self.mean[layer][rows] = mean
            self.m2[layer][rows] += step * (observed - mean)
            self.positive[layer][rows] += (observed > 0).to(torch.int32)
            self.negative[layer][rows] += (observed < 0).to(torch.int32)

    def merge(self, other: WelfordState) -> WelfordState:
        """Chan et al.'s exact parallel combination of two states over disjoint cell sets."""
        if not np.array_equal(self.source_features, other.source_features) or self.layers != other.layers:
            raise ValueError("cannot merge states of different source features or layers")
        n_a = self.n.to(self.mean[self.layers[0]].dtype).unsqueeze(1)
        n_b = other.n.to(n_a.dtype).unsqueeze(1)
        total = n_a + n_b
        safe = total.clamp_min(1)
        merged = WelfordState(self.source_features, self.n + other.n, {}, {}, {}, {})
        for layer in self.layers:
            step = other.mean[layer] - self.mean[layer]
            merged.mean[layer] = self.mean[layer] + step * n_b / safe
            merged.m2[layer] = self.m2[layer] + other.m2[layer] + step * step * n_a * n_b / safe
            merged.positive[layer] = self.positive[layer] + other.positive[layer]
            merged.negative[layer] = self.negative[layer] + other.negative[layer]
        return merged

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat name -> numpy array mapping (for safetensors files)."""
        arrays = {"source_features": self.source_features, "n": self.n.cpu().numpy()}
        for layer in self.layers:
            for name in ("mean", "m2", "positive", "negative"):
                arrays[f"{name}.{layer}"] = getattr(self, name)[layer].cpu().numpy()
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], device: torch.device | str = "cpu") -> WelfordState:
        """Inverse of :meth:`to_arrays`."""
        layers = sorted({int(key.split(".")[1]) for key in arrays if key.startswith("mean.")})
        dtype = accumulator_dtype(torch.device(device))
        tensors = {name: {layer: torch.as_tensor(arrays[f"{name}.{layer}"]).to(device) for layer in layers}
                   for name in ("mean", "m2", "positive", "negative")}
        for name in ("mean", "m2"):
            tensors[name] = {layer: tensor.to(dtype) for layer, tensor in tensors[name].items()}
        return cls(np.asarray(arrays["source_features"], dtype=np.int64), torch.as_tensor(arrays["n"]).to(device),
                   tensors["mean"], tensors["m2"], tensors["positive"], tensors["negative"])


def t_test_p(cohens_d: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Two-sided one-sample t-test p-values from Cohen's d and n (t = d * sqrt(n), df = n - 1)."""
    n = np.asarray(n, dtype=np.float64)
    t = np.abs(np.asarray(cohens_d, dtype=np.float64)) * np.sqrt(n)
    return np.clip(2.0 * stdtr(n - 1.0, -t), 0.0, 1.0)


@dataclass
class LayerStatistics:
    """Statistics of every tested (source feature, target feature) pair of one downstream layer."""

    layer: int
    source_features: np.ndarray   # (S,) source feature of each row
    n: np.ndarray                 # (S,)
    mean: np.ndarray              # (S, F)
    std: np.ndarray
    cohens_d: np.ndarray
    consistency: np.ndarray
    p: np.ndarray


def layer_statistics(state: WelfordState, layer: int, consistency_mode: str = "reference") -> LayerStatistics:
    """Statistics of the source features measured in at least two cells (the reference's minimum)."""
    n_all = state.n.cpu().numpy()
    keep = n_all >= 2
    n = n_all[keep].astype(np.float64)[:, None]
    mean = state.mean[layer].cpu().numpy().astype(np.float64)[keep]
    std = np.sqrt(state.m2[layer].cpu().numpy().astype(np.float64)[keep] / (n - 1.0))
    cohens_d = mean / np.maximum(std, MIN_STD)
    positive = state.positive[layer].cpu().numpy()[keep].astype(np.float64)
    if consistency_mode == "reference":
        consistency = np.maximum(positive, n - positive) / n
    else:
        negative = state.negative[layer].cpu().numpy()[keep].astype(np.float64)
        agreeing = np.where(mean > 0, positive, np.where(mean < 0, negative, n - positive - negative))
        consistency = agreeing / n
    return LayerStatistics(layer, state.source_features[keep], n_all[keep], mean, std, cohens_d, consistency,
                           t_test_p(cohens_d, np.broadcast_to(n, cohens_d.shape)))


def significant(stats: LayerStatistics, thresholds: Thresholds) -> np.ndarray:
    """Boolean mask of the significant pairs: |d| > threshold and consistency > threshold (strict, as the reference)."""
    return (np.abs(stats.cohens_d) > thresholds.cohens_d) & (stats.consistency > thresholds.consistency)
