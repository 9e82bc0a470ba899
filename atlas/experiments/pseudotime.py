"""Pseudotime of cells and the early/late signatures that steering is scored against (no model needed).

Pseudotime is scanpy's diffusion pseudotime on a cell representation (e.g. the model's mean embedding) with an
explicit root rule, or any per-cell column the user already has. The early and late signatures are the mean output
logit vectors of the cells at the two pseudotime extremes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from atlas.errors import AtlasError

ROOT_RULES = "cell:<index> | dc1-min | dc1-max | group:<value>"
_ROOT = re.compile(r"^(?:cell:(?P<cell>\d+)|(?P<extreme>dc1-min|dc1-max)|group:(?P<group>.+))$")


def parse_root_rule(rule: str) -> tuple[str, str | int]:
    """Validate a root rule: ``cell:17``, ``dc1-min``, ``dc1-max`` or ``group:<label>`` (needs labels)."""
    match = _ROOT.match(rule.strip())
    if match is None:
        raise AtlasError(f"root rule {rule!r} is not one of: {ROOT_RULES}")
    if match["cell"] is not None:
        return "cell", int(match["cell"])
    if match["extreme"] is not None:
        return "extreme", match["extreme"]
    return "group", match["group"]


def choose_root(rule: str, diffusion_component: np.ndarray, labels: np.ndarray | None = None) -> int:
    """The root cell index under a rule, given the first diffusion component (DC1) of every cell.

    ``group:<label>`` takes, among the cells with that label, the one at the DC1 extreme that lies away from the
    other cells (so the root is the group's most distant cell along the main trajectory axis).
    """
    kind, value = parse_root_rule(rule)
    n_cells = len(diffusion_component)
    if kind == "cell":
        if not 0 <= int(value) < n_cells:
            raise AtlasError(f"root cell {value} is out of range: there are {n_cells} cells")
        return int(value)
    if kind == "extreme":
        return int(np.argmin(diffusion_component) if value == "dc1-min" else np.argmax(diffusion_component))
    if labels is None:
        raise AtlasError("root rule group:<label> needs per-cell labels (--group-column)")
    in_group = np.asarray(labels).astype(str) == str(value)
    if not in_group.any():
        raise AtlasError(f"no cell has the label {value!r} for the root rule")
    if in_group.all():
        raise AtlasError(f"every cell has the label {value!r}: the root rule cannot orient the trajectory")
    candidates = np.flatnonzero(in_group)
    toward_low = diffusion_component[in_group].mean() < diffusion_component[~in_group].mean()
    pick = np.argmin if toward_low else np.argmax
    return int(candidates[pick(diffusion_component[candidates])])


def diffusion_pseudotime(representation: np.ndarray, root_rule: str = "dc1-min", labels: np.ndarray | None = None,
                         n_neighbors: int = 15, seed: int = 0) -> tuple[np.ndarray, int]:
    """Diffusion pseudotime (scanpy ``tl.dpt``) of cells given as rows of ``representation``; returns (dpt, root).

    Cells that the neighbour graph cannot reach from the root get infinite pseudotime in scanpy; they are an error
    here, because early and late extremes would be meaningless.
    """
    import anndata
    import scanpy as sc

    representation = np.asarray(representation, dtype=np.float32)
    n_cells = representation.shape[0]
    if n_cells < 4:
        raise AtlasError(f"diffusion pseudotime needs at least 4 cells, got {n_cells}")
    adata = anndata.AnnData(np.zeros((n_cells, 1), dtype=np.float32))
    adata.obsm["X_rep"] = representation
    sc.pp.neighbors(adata, n_neighbors=min(n_neighbors, n_cells - 1), use_rep="X_rep", random_state=seed)
    sc.tl.diffmap(adata, n_comps=min(10, n_cells - 2), random_state=seed)
    # scanpy's first diffusion component (index 0) is the stationary one; DC1 is index 1.
    root = choose_root(root_rule, adata.obsm["X_diffmap"][:, 1], labels)
    adata.uns["iroot"] = root
    sc.tl.dpt(adata, n_dcs=min(10, n_cells - 2))
    pseudotime = adata.obs["dpt_pseudotime"].to_numpy(dtype=np.float64)
    if not np.isfinite(pseudotime).all():
        raise AtlasError("some cells are not connected to the root in the neighbour graph; "
                         "raise --neighbors or give a pseudotime column")
    return pseudotime, root


@dataclass(frozen=True)
class Extremes:
    """The early and late cells of a pseudotime ordering."""

    early: np.ndarray  # cell indices
    late: np.ndarray


def pseudotime_extremes(pseudotime: np.ndarray, fraction: float = 0.2) -> Extremes:
    """The ``fraction`` of cells with the lowest and the highest pseudotime (at least two cells each)."""
    pseudotime = np.asarray(pseudotime, dtype=np.float64)
    if not 0 < fraction <= 0.5:
        raise AtlasError(f"extreme fraction must be in (0, 0.5], got {fraction}")
    if not np.isfinite(pseudotime).all():
        raise AtlasError("pseudotime has missing or infinite values")
    count = max(2, int(round(fraction * len(pseudotime))))
    if 2 * count > len(pseudotime):
        raise AtlasError(f"{len(pseudotime)} cells are too few for early and late groups of {count} cells")
    order = np.argsort(pseudotime, kind="stable")
    return Extremes(early=order[:count], late=order[-count:])


def signatures(cell_logits: np.ndarray, extremes: Extremes) -> tuple[np.ndarray, np.ndarray]:
    """Early and late signatures: the mean per-cell logit vector of each extreme group."""
    cell_logits = np.asarray(cell_logits, dtype=np.float64)
    return cell_logits[extremes.early].mean(axis=0), cell_logits[extremes.late].mean(axis=0)


def cohens_d_two_groups(late: np.ndarray, early: np.ndarray) -> np.ndarray:
    """Two-sample Cohen's d (late minus early, pooled sample std) per column; 0 where both groups are constant."""
    late, early = np.asarray(late, dtype=np.float64), np.asarray(early, dtype=np.float64)
    n_late, n_early = len(late), len(early)
    pooled = ((n_late - 1) * late.var(axis=0, ddof=1) + (n_early - 1) * early.var(axis=0, ddof=1)) / (
        n_late + n_early - 2)
    difference = late.mean(axis=0) - early.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(pooled > 0, difference / np.sqrt(pooled), 0.0)
