"""Pseudotime of cells and the early/late signatures that steering is scored against (no model needed).

Pseudotime is scanpy's diffusion pseudotime with an explicit root rule, or any per-cell column the user already has.
The reference study computes it on the expression (:func:`expression_pseudotime`: log-normalised counts, 2,000
highly variable genes by scanpy's ``seurat_v3`` flavour, 50 principal components, a 15-neighbour graph on 30 of
them, 10 diffusion components) rooted at the first haematopoietic stem cell; :func:`diffusion_pseudotime` does the
same on any other representation (e.g. the model's mean embedding). The early and late groups are the pseudotime
tertiles (the study: ``<=`` the 33.3rd and ``>=`` the 66.7th percentile) or a fraction at each extreme; the
signatures are their mean output logit vectors.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np

from atlas.errors import AtlasError

ROOT_RULES = "auto | cell:<index> | dc1-min | dc1-max | group:<value> | type:<value>"
_ROOT = re.compile(r"^(?:cell:(?P<cell>\d+)|(?P<extreme>dc1-min|dc1-max)|group:(?P<group>.+)|type:(?P<type>.+))$")
STUDY_ROOT_TYPE = "hematopoietic stem cell"
GROUP_RULES = ("tertiles", "extremes")


def parse_root_rule(rule: str) -> tuple[str, str | int]:
    """Validate a root rule: ``cell:17``, ``dc1-min``, ``dc1-max``, ``group:<label>`` or ``type:<label>``."""
    match = _ROOT.match(rule.strip())
    if match is None:
        raise AtlasError(f"root rule {rule!r} is not one of: {ROOT_RULES}")
    if match["cell"] is not None:
        return "cell", int(match["cell"])
    if match["extreme"] is not None:
        return "extreme", match["extreme"]
    if match["type"] is not None:
        return "type", match["type"]
    return "group", match["group"]


def resolve_root_rule(rule: str, labels: np.ndarray | None) -> str:
    """``auto`` is the study's rule where it applies: ``type:hematopoietic stem cell`` when some cell carries that
    label, else ``dc1-min``; any other rule is returned as given."""
    if rule != "auto":
        return rule
    if labels is not None and (np.char.lower(np.asarray(labels).astype(str)) == STUDY_ROOT_TYPE).any():
        return f"type:{STUDY_ROOT_TYPE}"
    return "dc1-min"


def choose_root(rule: str, diffusion_component: np.ndarray, labels: np.ndarray | None = None) -> int:
    """The root cell index under a rule, given the first diffusion component (DC1) of every cell.

    ``group:<label>`` takes, among the cells with that label, the one at the DC1 extreme that lies away from the
    other cells (so the root is the group's most distant cell along the main trajectory axis); ``type:<label>``
    takes the first cell with that label, compared case-insensitively (the study's rule).
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
        raise AtlasError(f"root rule {rule} needs per-cell labels (--labels)")
    if kind == "type":
        matching = np.flatnonzero(np.char.lower(np.asarray(labels).astype(str)) == str(value).lower())
        if not matching.size:
            raise AtlasError(f"no cell has the type {value!r} for the root rule")
        return int(matching[0])
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
    n_cells = _enough_cells(representation)
    adata = anndata.AnnData(np.zeros((n_cells, 1), dtype=np.float32))
    adata.obsm["X_rep"] = representation
    sc.pp.neighbors(adata, n_neighbors=min(n_neighbors, n_cells - 1), use_rep="X_rep", random_state=seed)
    return _dpt(adata, root_rule, labels, seed)


def expression_pseudotime(expression: np.ndarray, root_rule: str = "auto", labels: np.ndarray | None = None,
                          n_neighbors: int = 15, n_top_genes: int = 2000, seed: int = 0) -> tuple[np.ndarray, int]:
    """The study's diffusion pseudotime of log-normalised expression (cells x genes); returns (dpt, root).

    Highly variable genes by scanpy's ``seurat_v3`` flavour on the matrix as given (the study passes it the
    log-normalised values), PCA on them, a neighbour graph on the first 30 components, 10 diffusion components;
    sizes shrink to what small cell sets allow.
    """
    import anndata
    import scanpy as sc

    expression = np.asarray(expression, dtype=np.float32)
    n_cells = _enough_cells(expression)
    adata = anndata.AnnData(expression)
    expressed = int((expression > 0).any(axis=0).sum())
    if expressed < 3:
        raise AtlasError(f"expression pseudotime needs at least 3 expressed genes, got {expressed}")
    with warnings.catch_warnings():
        # seurat_v3 warns that it expects counts; the study gives it the log-normalised values on purpose
        warnings.filterwarnings("ignore", message=".*seurat_v3.*expects raw count data")
        sc.pp.highly_variable_genes(adata, n_top_genes=min(n_top_genes, expressed - 1), flavor="seurat_v3")
    n_components = min(50, n_cells - 1, int(adata.var["highly_variable"].sum()) - 1)
    sc.pp.pca(adata, n_comps=n_components, mask_var="highly_variable", random_state=seed)
    sc.pp.neighbors(adata, n_neighbors=min(n_neighbors, n_cells - 1), n_pcs=min(30, n_components),
                    random_state=seed)
    return _dpt(adata, root_rule, labels, seed)


def _enough_cells(matrix: np.ndarray) -> int:
    if matrix.ndim != 2 or matrix.shape[0] < 4:
        raise AtlasError(f"diffusion pseudotime needs at least 4 cells, got {matrix.shape[0] if matrix.ndim else 0}")
    return matrix.shape[0]


def _dpt(adata, root_rule: str, labels: np.ndarray | None, seed: int) -> tuple[np.ndarray, int]:
    """Diffusion map, root and diffusion pseudotime on an AnnData whose neighbour graph is built."""
    import scanpy as sc

    n_cells = adata.n_obs
    sc.tl.diffmap(adata, n_comps=min(10, n_cells - 2), random_state=seed)
    # scanpy's first diffusion component (index 0) is the stationary one; DC1 is index 1.
    root = choose_root(resolve_root_rule(root_rule, labels), adata.obsm["X_diffmap"][:, 1], labels)
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


def pseudotime_tertiles(pseudotime: np.ndarray) -> Extremes:
    """The study's groups: early at or below the 33.3rd percentile of pseudotime, late at or above the 66.7th."""
    pseudotime = np.asarray(pseudotime, dtype=np.float64)
    if not np.isfinite(pseudotime).all():
        raise AtlasError("pseudotime has missing or infinite values")
    low, high = np.percentile(pseudotime, [33.3, 66.7])
    groups = Extremes(early=np.flatnonzero(pseudotime <= low), late=np.flatnonzero(pseudotime >= high))
    if min(len(groups.early), len(groups.late)) < 2:
        raise AtlasError(f"{len(pseudotime)} cells are too few for early and late tertiles of two cells or more")
    return groups


def pseudotime_groups(pseudotime: np.ndarray, rule: str = "tertiles", fraction: float = 0.2) -> Extremes:
    """Early and late cells by ``rule``: ``tertiles`` (the study's) or ``extremes`` (``fraction`` at each end)."""
    if rule not in GROUP_RULES:
        raise AtlasError(f"pseudotime groups {rule!r} is not one of {', '.join(GROUP_RULES)}")
    return pseudotime_tertiles(pseudotime) if rule == "tertiles" else pseudotime_extremes(pseudotime, fraction)


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
