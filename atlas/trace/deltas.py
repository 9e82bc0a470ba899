"""Per-cell deltas kept on request (`atlas trace run --keep-deltas`), the input of the permutation null.

One file per plan unit, ``deltas/<unit>.safetensors``, beside the unit's Welford state: one row per (source feature,
cell) in which the feature was active, ordered by source feature then cell, with

    source_feature  (R,) int32
    cell            (R,) int32   position in the run's cell set
    delta.<layer>   (R, F_layer) float16 or float32: the change of every target feature of that downstream layer,
                    averaged over the feature's active positions in that cell (exactly what Welford accumulates)

float16 is what the reference study archived (its measured effect on the edge count: under 0.01%); float32 keeps
every digit the engine computed. No torch here: observations arrive as tensors and leave as numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors.numpy import load as load_safetensors

from atlas.errors import AtlasError
from atlas.runformat import file_sha256

DELTAS = "deltas"
DELTA_DTYPES = ("float16", "float32")


class DeltaRecorder:
    """Collects one unit's per-cell observations; :meth:`arrays` gives the file's contents."""

    def __init__(self, layer_widths: dict[int, int], dtype: str = "float16"):
        if dtype not in DELTA_DTYPES:
            raise AtlasError(f"deltas dtype must be one of {', '.join(DELTA_DTYPES)}, got {dtype!r}")
        self.layer_widths = dict(sorted(layer_widths.items()))
        self.dtype = np.dtype(dtype)
        self._features: list[np.ndarray] = []
        self._cells: list[np.ndarray] = []
        self._rows: dict[int, list[np.ndarray]] = {layer: [] for layer in self.layer_widths}

    def observer(self, cell: int) -> Callable:
        """The engine's ``observe`` callback for one cell (its position in the run's cell set)."""
        def observe(features, observed) -> None:
            sources = features.cpu().numpy().astype(np.int32)
            self._features.append(sources)
            self._cells.append(np.full(len(sources), cell, dtype=np.int32))
            for layer in self.layer_widths:
                self._rows[layer].append(observed[layer].cpu().numpy().astype(self.dtype))
        return observe

    def arrays(self) -> dict[str, np.ndarray]:
        """Rows sorted by (source feature, cell): the same bytes whatever order the cells were traced in."""
        features = np.concatenate(self._features) if self._features else np.empty(0, np.int32)
        cells = np.concatenate(self._cells) if self._cells else np.empty(0, np.int32)
        order = np.lexsort((cells, features))
        arrays = {"source_feature": features[order], "cell": cells[order]}
        for layer, width in self.layer_widths.items():
            rows = np.concatenate(self._rows[layer]) if self._rows[layer] else np.empty((0, width), self.dtype)
            arrays[f"delta.{layer}"] = np.ascontiguousarray(rows[order])
        return arrays


@dataclass
class FeatureDeltas:
    """The per-cell deltas of one source feature over the whole run: ``{layer: (n_cells_active, F)}`` float64."""

    source_feature: int
    cells: np.ndarray
    layers: dict[int, np.ndarray]

    @property
    def n(self) -> int:
        return len(self.cells)


def read_unit_deltas(path: Path, sha256: str | None = None) -> dict[str, np.ndarray]:
    """One unit's deltas file, checked against its manifest checksum when given."""
    if not path.is_file():
        raise AtlasError(f"{path}: missing (trace the run with `atlas trace run --keep-deltas`)")
    if sha256 is not None and file_sha256(path) != sha256:
        raise AtlasError(f"{path}: checksum does not match the manifest (file changed or truncated)")
    try:
        return load_safetensors(path.read_bytes())
    except (OSError, ValueError) as error:
        raise AtlasError(f"{path}: unreadable deltas file ({error})") from error


def feature_deltas(unit_files: list[dict[str, np.ndarray]], features: np.ndarray) -> dict[int, FeatureDeltas]:
    """Gather each of ``features``' rows from the deltas of the units covering it (cell ranges in order)."""
    wanted = set(int(f) for f in features)
    gathered: dict[int, dict[str, list[np.ndarray]]] = {}
    for arrays in unit_files:
        sources = arrays["source_feature"]
        layers = sorted(int(key.split(".")[1]) for key in arrays if key.startswith("delta."))
        for feature in np.unique(sources):
            if int(feature) not in wanted:
                continue
            rows = sources == feature
            entry = gathered.setdefault(int(feature), {"cells": [], **{str(layer): [] for layer in layers}})
            entry["cells"].append(arrays["cell"][rows])
            for layer in layers:
                entry[str(layer)].append(arrays[f"delta.{layer}"][rows])
    result = {}
    for feature, entry in gathered.items():
        cells = np.concatenate(entry.pop("cells"))
        order = np.argsort(cells, kind="stable")
        result[feature] = FeatureDeltas(feature, cells[order], {
            int(layer): np.concatenate(parts)[order].astype(np.float64) for layer, parts in entry.items()})
    return result
