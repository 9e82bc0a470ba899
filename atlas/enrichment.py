"""Gene-set enrichment of SAE features' top genes: one-sided Fisher's exact test with Benjamini-Hochberg control.

The same test as the reference atlas: for each feature, its top genes against each gene set, the background being
the union of all features' top genes (the genes a feature could have had), gene sets restricted to that background
and kept when their size is in range; BH runs over every (feature, gene set) pair tested in the layer.
Genes are matched case-insensitively by name. No torch here: annotation runs where the loaders run.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import hypergeom

from atlas.catalog import (
    CATALOG,
    LAYER_DIR,
    Annotation,
    LayerCatalog,
    read_layer_catalog,
    write_layer_catalog,
)
from atlas.errors import AtlasError
from atlas.gmt import gene_sets, library_name
from atlas.stats import benjamini_hochberg


@dataclass(frozen=True)
class Enrichment:
    """One (feature, gene set) test."""

    feature: int
    term: str
    p_value: float
    p_adjusted: float
    odds_ratio: float
    overlap: tuple[str, ...]
    term_size: int

    @property
    def n_overlap(self) -> int:
        """How many of the feature's top genes are in the gene set."""
        return len(self.overlap)


def enrich_features(
    feature_genes: Mapping[int, Collection[str]],
    gene_sets: Mapping[str, Collection[str]],
    *,
    min_overlap: int = 2,
    min_set_size: int = 3,
    max_set_size: int = 500,
) -> list[Enrichment]:
    """Fisher tests of every feature's genes against every gene set; results with overlap >= min_overlap, by p."""
    genes_of = {feature: {gene.upper() for gene in genes} for feature, genes in feature_genes.items()}
    background = set().union(*genes_of.values()) if genes_of else set()
    sets = {term: {gene.upper() for gene in genes} & background for term, genes in gene_sets.items()}
    sets = {term: genes for term, genes in sets.items() if min_set_size <= len(genes) <= max_set_size}
    n_background = len(background)
    rows: list[tuple[int, str, tuple[str, ...], int]] = []
    for feature, genes in genes_of.items():
        for term, term_genes in sets.items():
            overlap = genes & term_genes
            if len(overlap) >= min_overlap:
                rows.append((feature, term, tuple(sorted(overlap)), len(genes)))
    n_tests = len(genes_of) * len(sets)
    if not rows:
        return []
    overlaps = np.array([len(row[2]) for row in rows])
    drawn = np.array([row[3] for row in rows])
    term_sizes = np.array([len(sets[row[1]]) for row in rows])
    # P(X >= a) for X ~ Hypergeom(background, term size, draws) is Fisher's exact test, alternative "greater"
    p_values = hypergeom.sf(overlaps - 1, n_background, term_sizes, drawn)
    q_values = benjamini_hochberg(p_values, n_tests)
    odds = _odds_ratios(overlaps, drawn, term_sizes, n_background)
    results = [
        Enrichment(feature, term, float(p), float(q), float(o), overlap, int(size))
        for (feature, term, overlap, _), p, q, o, size in zip(rows, p_values, q_values, odds, term_sizes, strict=True)
    ]
    return sorted(results, key=lambda result: (result.p_value, result.feature, result.term))


def _odds_ratios(overlaps: np.ndarray, drawn: np.ndarray, term_sizes: np.ndarray, n_background: int) -> np.ndarray:
    a = overlaps.astype(np.float64)
    b = drawn - a
    c = term_sizes - a
    d = n_background - a - b - c
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b * c > 0, a * d / np.where(b * c > 0, b * c, 1.0), np.inf)


def annotate_catalog(
    catalog: LayerCatalog,
    gene_sets: Mapping[str, Collection[str]],
    source: str,
    *,
    top_n: int = 20,
    alpha: float = 0.05,
    min_overlap: int = 2,
    min_set_size: int = 3,
    max_set_size: int = 500,
) -> int:
    """Replace the catalog's `source` annotations by the gene sets its features' top genes are enriched in (q < alpha).

    Annotations from other sources stay. Returns how many features carry at least one `source` annotation.
    """
    feature_genes = {feature.index: [gene.gene_name for gene in feature.top_genes[:top_n]]
                     for feature in catalog.features if not feature.is_dead and feature.top_genes}
    significant: dict[int, list[Annotation]] = {}
    results = enrich_features(feature_genes, gene_sets, min_overlap=min_overlap, min_set_size=min_set_size,
                              max_set_size=max_set_size)
    for result in results:
        if result.p_adjusted < alpha:
            significant.setdefault(result.feature, []).append(Annotation(
                ontology=source, term=result.term, p_adjusted=result.p_adjusted,
                odds_ratio=result.odds_ratio if np.isfinite(result.odds_ratio) else None,
                n_overlap=result.n_overlap, overlap_genes=list(result.overlap),
                extra={"p_value": result.p_value, "term_size": result.term_size}))
    for feature in catalog.features:
        kept = [annotation for annotation in feature.annotations if annotation.ontology != source]
        feature.annotations = kept + significant.get(feature.index, [])
    catalog.bh_alpha = alpha
    return len(significant)


def enrich_atlas(
    sae_atlas: str | Path,
    gmt: str | Path,
    *,
    source: str | None = None,
    layers: Collection[int] | None = None,
    top_n: int = 20,
    alpha: float = 0.05,
    min_overlap: int = 2,
    min_set_size: int = 3,
    max_set_size: int = 500,
) -> list[dict]:
    """Annotate every layer catalog of an SAE atlas by enrichment in a GMT file; rewrites feature_annotations.json.

    Returns one row per layer: alive features, features annotated by this GMT, and the annotation rate.
    """
    source = source or library_name(gmt)
    sets = gene_sets(gmt)
    catalogs = _layer_catalogs(Path(sae_atlas))
    if layers is not None:
        missing = sorted(set(layers) - set(catalogs))
        if missing:
            raise AtlasError(f"{sae_atlas}: no catalog for layer(s) {missing} (found {sorted(catalogs)})")
        catalogs = {layer: catalogs[layer] for layer in sorted(set(layers))}
    if not catalogs:
        raise AtlasError(f"{sae_atlas}: no layerNN_xE_kK/feature_catalog.json found")
    rows = []
    for layer, (layer_dir, catalog) in catalogs.items():
        annotated = annotate_catalog(catalog, sets, source, top_n=top_n, alpha=alpha, min_overlap=min_overlap,
                                     min_set_size=min_set_size, max_set_size=max_set_size)
        write_layer_catalog(layer_dir, catalog)
        rows.append({"layer": layer, "source": source, "alive": catalog.n_alive, "annotated": annotated,
                     "annotation_rate": round(annotated / max(catalog.n_alive, 1), 4)})
    return rows


def _layer_catalogs(root: Path) -> dict[int, tuple[Path, LayerCatalog]]:
    if not root.is_dir():
        raise AtlasError(f"{root}: SAE directory not found")
    found: dict[int, tuple[Path, LayerCatalog]] = {}
    for child in sorted(root.iterdir()):
        if LAYER_DIR.match(child.name) and (child / CATALOG).is_file():
            catalog = read_layer_catalog(child)
            if catalog.layer in found:
                raise AtlasError(f"{root}: two catalogs for layer {catalog.layer}")
            found[catalog.layer] = (child, catalog)
    return found
