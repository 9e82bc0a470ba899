"""Which source features to trace: all active ones, an explicit list, or the reference's selective baseline."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch

from atlas.catalog import CatalogFeature, LayerCatalog
from atlas.errors import AtlasError
from atlas.ranges import parse_ranges
from atlas.trace.engine import clean_pass
from atlas.trace.setup import TraceSetup

DEFAULT_MIN_FREQUENCY = 0.001


def active_from_catalog(catalog: LayerCatalog, min_frequency: float = DEFAULT_MIN_FREQUENCY) -> np.ndarray:
    """Features whose catalogued activation frequency is at least ``min_frequency`` (the study's 4,065 at L5)."""
    return np.asarray(sorted(f.index for f in catalog.features if f.activation_freq >= min_frequency), dtype=np.int64)


@torch.no_grad()
def measure_activation_frequency(setup: TraceSetup, cells: Iterable[np.ndarray]) -> np.ndarray:
    """Fraction of gene positions of ``cells`` where each source-layer feature is active."""
    sae = setup.source_sae
    counts = torch.zeros(sae.n_features, dtype=torch.float64, device=setup.device)
    positions = 0
    for tokens in cells:
        ids, genes = setup.input_ids(tokens)
        if genes.numel():
            hidden = clean_pass(setup, ids, [setup.source_layer])[setup.source_layer][genes]
            counts += (sae.encode(hidden.to(sae.W_dec.dtype)) > 0).sum(dim=0)
            positions += genes.numel()
    if not positions:
        raise AtlasError("the cells have no gene tokens, so activation frequencies cannot be measured")
    return (counts / positions).cpu().numpy()


def active_from_frequencies(frequencies: np.ndarray, min_frequency: float = DEFAULT_MIN_FREQUENCY) -> np.ndarray:
    """Indices whose frequency is at least ``min_frequency``."""
    return np.flatnonzero(np.asarray(frequencies) >= min_frequency).astype(np.int64)


def annotation_score(feature: CatalogFeature) -> float:
    """The reference's annotation quality: 10 x ontologies + annotations - log10(min adjusted p)."""
    ontologies = {annotation.ontology for annotation in feature.annotations}
    return 10 * len(ontologies) + len(feature.annotations) - math.log10(max(feature.min_p_adjusted, 1e-30))


def selective_baseline(catalog: LayerCatalog, top_n: int, min_genes: int = 10, min_frequency: float = 0.01
                       ) -> np.ndarray:
    """The reference's selective choice: the ``top_n`` annotated features by annotation quality, among those with at
    least ``min_genes`` top genes and activation frequency >= ``min_frequency``; returned sorted by index."""
    candidates = [f for f in catalog.features
                  if f.annotated and len(f.top_genes) >= min_genes and f.activation_freq >= min_frequency]
    ranked = sorted(candidates, key=lambda f: (-annotation_score(f), f.index))[:top_n]
    return np.asarray(sorted(f.index for f in ranked), dtype=np.int64)


def select_source_features(spec: str, setup: TraceSetup, catalog: LayerCatalog | None, cells: list[np.ndarray],
                           min_frequency: float = DEFAULT_MIN_FREQUENCY, frequency_source: str = "auto",
                           min_top_genes: int = 10) -> tuple[np.ndarray, dict]:
    """Resolve a feature spec to sorted source features and a description for the manifest.

    ``all``: every feature with activation frequency >= ``min_frequency``, read from the catalog
    (``frequency_source`` ``catalog``), measured on the cells (``cells``), or catalog when present (``auto``);
    ``selective:N``: the reference's top-N by annotation quality among features with >= ``min_top_genes`` top genes
    and frequency >= 0.01 (needs a catalog); otherwise an explicit list
    such as ``3,7,10-12``.
    """
    if spec == "all":
        source = ("catalog" if catalog is not None else "cells") if frequency_source == "auto" else frequency_source
        if source == "catalog":
            if catalog is None:
                raise AtlasError(f"no feature catalog for layer {setup.source_layer}; use --frequency-source cells")
            features = active_from_catalog(catalog, min_frequency)
        elif source == "cells":
            features = active_from_frequencies(measure_activation_frequency(setup, cells), min_frequency)
        else:
            raise AtlasError(f"frequency source {frequency_source!r} is not auto, catalog or cells")
        return features, {"method": "all_active", "min_frequency": min_frequency, "frequency_source": source}
    if spec.startswith("selective:"):
        if catalog is None:
            raise AtlasError("the selective baseline ranks features by annotation quality: it needs a feature catalog")
        try:
            top_n = int(spec.split(":", 1)[1])
        except ValueError as error:
            raise AtlasError(f"{spec!r}: use selective:N with N a number") from error
        return selective_baseline(catalog, top_n, min_top_genes), {"method": "selective", "top_n": top_n,
                                                                   "min_top_genes": min_top_genes}
    features = setup.check_features(np.asarray(parse_ranges(spec, "features"), dtype=np.int64))
    return features, {"method": "list"}
