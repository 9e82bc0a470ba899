"""Shard plan: source-feature ranges x cell ranges, each an independent unit of work for any scheduler."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from atlas.errors import AtlasError


@dataclass(frozen=True)
class Unit:
    """One invocation's work: the selected source features in ``[first_feature, end_feature)`` over cells
    ``[first_cell, end_cell)``."""

    index: int
    first_feature: int
    end_feature: int
    first_cell: int
    end_cell: int

    @property
    def feature_range(self) -> str:
        return f"F{self.first_feature:06d}-{self.end_feature:06d}"

    @property
    def name(self) -> str:
        """Stable file stem, e.g. ``F000000-000128_C0000000-0000020``."""
        return f"{self.feature_range}_C{self.first_cell:07d}-{self.end_cell:07d}"

    def features(self, selected: np.ndarray) -> np.ndarray:
        """The selected source features this unit traces."""
        return selected[(selected >= self.first_feature) & (selected < self.end_feature)]

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def make_plan(selected: np.ndarray, n_cells: int, features_per_shard: int, cells_per_shard: int | None = None
              ) -> list[Unit]:
    """Split sorted ``selected`` features into chunks of ``features_per_shard`` and cells into ranges of
    ``cells_per_shard`` (default: all cells in one range); units are ordered feature range first."""
    if features_per_shard < 1 or (cells_per_shard is not None and cells_per_shard < 1):
        raise AtlasError("features per shard and cells per shard must be positive")
    if n_cells < 1:
        raise AtlasError("the cell set is empty")
    if not len(selected):
        raise AtlasError("no source features selected (lower --min-frequency or pass --features)")
    selected = np.asarray(selected, dtype=np.int64)
    chunks = [selected[i:i + features_per_shard] for i in range(0, len(selected), features_per_shard)]
    bounds = [int(chunk[0]) for chunk in chunks] + [int(selected[-1]) + 1]
    step = cells_per_shard or n_cells
    cell_ranges = [(start, min(start + step, n_cells)) for start in range(0, n_cells, step)]
    units = []
    for first, end in zip(bounds[:-1], bounds[1:], strict=True):
        for first_cell, end_cell in cell_ranges:
            units.append(Unit(len(units), first, end, first_cell, end_cell))
    return units


def units_from_dicts(data: list[dict[str, int]]) -> list[Unit]:
    """Inverse of :meth:`Unit.as_dict` for a whole plan."""
    return [Unit(**entry) for entry in data]
