"""SAE feature catalogs of the public SAE atlas layout, read and written without torch.

Per layer directory (``layer05_x4_k32/``):

- ``feature_catalog.json``: ``{"summary": {run_name, layer, n_features, k, n_alive, n_dead},
  "features": [{feature_idx, is_dead, activation_freq, mean_activation, fire_count, n_unique_genes,
  top_genes: [{gene_id, gene_name, mean_activation, fire_count}]}]}``
- ``feature_annotations.json``: ``{"summary": {...}, "feature_annotations": {"<feature_idx>": [{ontology, term,
  p_adjusted, odds_ratio, n_overlap, overlap_genes} or {ontology, term, n_edges, density}]},
  "all_significant_tests": [...], "edge_enrichments": [...]}``

A feature is *annotated* when it has at least one entry in ``feature_annotations`` (the reference study's count);
its *label* is the term with the smallest adjusted p-value, or the first entry's ``ontology:term`` when none has one.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from atlas.errors import AtlasError
from atlas.files import write_atomically

CATALOG = "feature_catalog.json"
ANNOTATIONS = "feature_annotations.json"
LAYER_DIR = re.compile(r"^layer(\d+)_x(\d+)_k(\d+)$")
_ANNOTATION_FIELDS = ("ontology", "term", "p_adjusted", "odds_ratio", "n_overlap", "overlap_genes")


@dataclass
class TopGene:
    """A gene on whose tokens the feature fires strongly; ``weight`` is its mean activation there."""

    gene_id: int
    gene_name: str
    weight: float
    fire_count: int = 0


@dataclass
class Annotation:
    """One enrichment result of a feature's top genes (GO/KEGG/Reactome term, or an edge-density test)."""

    ontology: str
    term: str
    p_adjusted: float | None = None
    odds_ratio: float | None = None
    n_overlap: int | None = None
    overlap_genes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ontology": self.ontology, "term": self.term}
        if self.p_adjusted is not None:
            data.update(p_adjusted=self.p_adjusted, odds_ratio=self.odds_ratio, n_overlap=self.n_overlap,
                        overlap_genes=list(self.overlap_genes))
        data.update(self.extra)
        return data


@dataclass
class CatalogFeature:
    """One SAE feature: how often it fires, on which genes, and what it is enriched in."""

    index: int
    activation_freq: float
    mean_activation: float = 0.0
    fire_count: int = 0
    is_dead: bool = False
    top_genes: list[TopGene] = field(default_factory=list)
    n_unique_genes: int = 0
    annotations: list[Annotation] = field(default_factory=list)

    @property
    def annotated(self) -> bool:
        """True when the feature has at least one annotation entry."""
        return bool(self.annotations)

    @property
    def label(self) -> str | None:
        """Best term (smallest adjusted p), else the first entry's ``ontology:term``; None when unannotated."""
        scored = [a for a in self.annotations if a.p_adjusted is not None]
        if scored:
            return min(scored, key=lambda a: a.p_adjusted).term
        if self.annotations:
            return f"{self.annotations[0].ontology}:{self.annotations[0].term}"
        return None

    @property
    def min_p_adjusted(self) -> float:
        """Smallest adjusted p-value over the feature's annotations (1.0 when none)."""
        return min((a.p_adjusted for a in self.annotations if a.p_adjusted is not None), default=1.0)


@dataclass
class LayerCatalog:
    """The catalog of one layer's SAE."""

    layer: int
    n_features: int
    k: int
    features: list[CatalogFeature]
    run_name: str = ""
    bh_alpha: float = 0.05

    def __post_init__(self) -> None:
        self._by_index = {feature.index: feature for feature in self.features}

    def feature(self, index: int) -> CatalogFeature | None:
        """The entry of feature ``index`` (None when the catalog does not list it)."""
        return self._by_index.get(index)

    def activation_freqs(self) -> dict[int, float]:
        """Feature index -> activation frequency."""
        return {feature.index: feature.activation_freq for feature in self.features}

    @property
    def n_alive(self) -> int:
        return sum(not feature.is_dead for feature in self.features)

    @property
    def n_annotated(self) -> int:
        return sum(feature.annotated for feature in self.features)


def _load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise AtlasError(f"{path}: not found") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise AtlasError(f"{path}: malformed JSON ({error})") from error
    if not isinstance(data, dict):
        raise AtlasError(f"{path}: expected a JSON object")
    return data


def _number(value: Any, path: Path, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise AtlasError(f"{path}: {where}: expected a finite number, got {value!r}")
    return float(value)


def _any_number(value: Any, path: Path, where: str) -> float:
    """A JSON number, NaN included (a dead feature's mean activation may be NaN in published catalogs)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise AtlasError(f"{path}: {where}: expected a number, got {value!r:.60}")
    return float(value)


def _integer(value: Any, path: Path, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise AtlasError(f"{path}: {where} must be a non-negative integer, got {value!r}")
    return value


def _object(value: Any, path: Path, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AtlasError(f"{path}: {where} must be a JSON object, got {value!r:.60}")
    return value


def _text(value: Any, path: Path, where: str) -> str:
    if isinstance(value, (dict, list)) or value is None:
        raise AtlasError(f"{path}: {where} must be a string, got {value!r:.60}")
    return str(value)


def _parse_annotation(entry: Any, path: Path, where: str) -> Annotation:
    if not isinstance(entry, dict) or not isinstance(entry.get("ontology"), str) or "term" not in entry:
        raise AtlasError(f"{path}: {where}: an annotation needs at least 'ontology' and 'term'")
    p_adjusted = entry.get("p_adjusted")
    if p_adjusted is not None:
        p_adjusted = _number(p_adjusted, path, f"{where}.p_adjusted")
        if not 0.0 <= p_adjusted <= 1.0:
            raise AtlasError(f"{path}: {where}.p_adjusted {p_adjusted} is not in [0, 1]")
    odds_ratio, n_overlap, genes = entry.get("odds_ratio"), entry.get("n_overlap"), entry.get("overlap_genes", [])
    if not isinstance(genes, list):
        raise AtlasError(f"{path}: {where}.overlap_genes must be a list, got {genes!r:.60}")
    return Annotation(
        ontology=entry["ontology"], term=_text(entry["term"], path, f"{where}.term"), p_adjusted=p_adjusted,
        odds_ratio=None if odds_ratio is None else _number(odds_ratio, path, f"{where}.odds_ratio"),
        n_overlap=None if n_overlap is None else _integer(n_overlap, path, f"{where}.n_overlap"),
        overlap_genes=[_text(gene, path, f"{where}.overlap_genes") for gene in genes],
        extra={key: value for key, value in entry.items() if key not in _ANNOTATION_FIELDS})


def _parse_feature(entry: Any, path: Path, position: int) -> CatalogFeature:
    where = f"features[{position}]"
    if not isinstance(entry, dict) or "feature_idx" not in entry or "activation_freq" not in entry:
        raise AtlasError(f"{path}: {where}: needs at least 'feature_idx' and 'activation_freq'")
    index = entry["feature_idx"]
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise AtlasError(f"{path}: {where}.feature_idx must be a non-negative integer, got {index!r}")
    frequency = _number(entry["activation_freq"], path, f"{where}.activation_freq")
    if not 0.0 <= frequency <= 1.0:
        raise AtlasError(f"{path}: {where}.activation_freq {frequency} is not in [0, 1]")
    genes = []
    top_genes = entry.get("top_genes")
    top_genes = [] if top_genes is None else top_genes
    if not isinstance(top_genes, list):
        raise AtlasError(f"{path}: {where}.top_genes must be a list, got {top_genes!r:.60}")
    for rank, gene in enumerate(top_genes):
        at = f"{where}.top_genes[{rank}]"
        if not isinstance(gene, dict) or "gene_id" not in gene:
            raise AtlasError(f"{path}: {at} needs 'gene_id'")
        gene_id = _integer(gene["gene_id"], path, f"{at}.gene_id")
        genes.append(TopGene(gene_id=gene_id, gene_name=_text(gene.get("gene_name", gene_id), path, f"{at}.gene_name"),
                             weight=_number(gene.get("mean_activation", 0.0), path, at),
                             fire_count=_integer(gene.get("fire_count", 0), path, f"{at}.fire_count")))
    is_dead = entry.get("is_dead", False)
    if not isinstance(is_dead, bool):
        raise AtlasError(f"{path}: {where}.is_dead must be true or false, got {is_dead!r:.60}")
    return CatalogFeature(index=index, activation_freq=frequency,
                          mean_activation=_any_number(entry.get("mean_activation", 0.0), path,
                                                      f"{where}.mean_activation"),
                          fire_count=_integer(entry.get("fire_count", 0), path, f"{where}.fire_count"),
                          is_dead=is_dead, top_genes=genes,
                          n_unique_genes=_integer(entry.get("n_unique_genes", len(genes)), path,
                                                  f"{where}.n_unique_genes"))


def read_layer_catalog(layer_dir: str | Path) -> LayerCatalog:
    """Read ``feature_catalog.json`` and, when present, ``feature_annotations.json`` of one layer directory."""
    layer_dir = Path(layer_dir)
    path = layer_dir / CATALOG
    data = _load_json(path)
    summary = _object(data.get("summary") or {}, path, "summary")
    entries = data.get("features")
    if not isinstance(entries, list):
        raise AtlasError(f"{path}: expected a 'features' list")
    features = [_parse_feature(entry, path, position) for position, entry in enumerate(entries)]
    match = LAYER_DIR.match(layer_dir.name)
    layer = summary.get("layer", int(match.group(1)) if match else None)
    if layer is None:
        raise AtlasError(f"{path}: summary.layer missing and the directory name is not layerNN_xE_kK")
    layer = _integer(layer, path, "summary.layer")
    n_features = _integer(summary.get("n_features", len(features)), path, "summary.n_features")
    if any(feature.index >= n_features for feature in features):
        raise AtlasError(f"{path}: a feature_idx is >= n_features {n_features}")
    catalog = LayerCatalog(layer=layer, n_features=n_features, k=_integer(summary.get("k", 0), path, "summary.k"),
                           features=features, run_name=_text(summary.get("run_name", layer_dir.name), path,
                                                             "summary.run_name"))
    annotations_path = layer_dir / ANNOTATIONS
    if annotations_path.is_file():
        annotations = _load_json(annotations_path)
        per_feature = annotations.get("feature_annotations") or {}
        if not isinstance(per_feature, dict):
            raise AtlasError(f"{annotations_path}: 'feature_annotations' must be an object keyed by feature index")
        for key, entries in per_feature.items():
            feature = catalog.feature(int(key)) if str(key).isdigit() else None
            if feature is None:
                raise AtlasError(f"{annotations_path}: feature {key!r} is not in {CATALOG}")
            if not isinstance(entries, list):
                raise AtlasError(f"{annotations_path}: feature_annotations[{key}] must be a list")
            feature.annotations = [_parse_annotation(entry, annotations_path, f"feature_annotations[{key}][{i}]")
                                   for i, entry in enumerate(entries)]
        annotation_summary = _object(annotations.get("summary") or {}, annotations_path, "summary")
        catalog.bh_alpha = _number(annotation_summary.get("bh_alpha", catalog.bh_alpha), annotations_path,
                                   "summary.bh_alpha")
    return catalog


def read_catalogs(root: str | Path) -> dict[int, LayerCatalog]:
    """Layer -> catalog for every ``layerNN_xE_kK`` directory under ``root`` that has a catalog."""
    root = Path(root)
    if not root.is_dir():
        raise AtlasError(f"{root}: SAE directory not found")
    catalogs: dict[int, LayerCatalog] = {}
    for child in sorted(root.iterdir()):
        if LAYER_DIR.match(child.name) and (child / CATALOG).is_file():
            catalog = read_layer_catalog(child)
            if catalog.layer in catalogs:
                raise AtlasError(f"{root}: two catalogs for layer {catalog.layer}")
            catalogs[catalog.layer] = catalog
    return catalogs


def write_layer_catalog(layer_dir: str | Path, catalog: LayerCatalog) -> None:
    """Write both JSON files of ``catalog`` into ``layer_dir`` (atomically, in the public layout)."""
    layer_dir = Path(layer_dir)
    layer_dir.mkdir(parents=True, exist_ok=True)
    features = [{
        "feature_idx": feature.index, "is_dead": feature.is_dead, "activation_freq": feature.activation_freq,
        "mean_activation": feature.mean_activation, "fire_count": feature.fire_count,
        "top_genes": [{"gene_id": gene.gene_id, "gene_name": gene.gene_name, "mean_activation": gene.weight,
                       "fire_count": gene.fire_count} for gene in feature.top_genes],
        "n_unique_genes": feature.n_unique_genes,
    } for feature in catalog.features]
    summary = {"run_name": catalog.run_name or layer_dir.name, "layer": catalog.layer,
               "n_features": catalog.n_features, "k": catalog.k, "n_alive": catalog.n_alive,
               "n_dead": len(catalog.features) - catalog.n_alive}
    _write_json(layer_dir / CATALOG, {"summary": summary, "features": features})
    annotated = {str(f.index): [a.to_json() for a in f.annotations] for f in catalog.features if f.annotations}
    significant = [{"feature_idx": f.index, **a.to_json()} for f in catalog.features for a in f.annotations
                   if a.p_adjusted is not None]
    edges = [{"feature_idx": f.index, **a.to_json()} for f in catalog.features for a in f.annotations
             if a.p_adjusted is None]
    ontology_counts: dict[str, int] = {}
    for feature in catalog.features:
        for annotation in feature.annotations:
            ontology_counts[annotation.ontology] = ontology_counts.get(annotation.ontology, 0) + 1
    annotation_summary = {
        "run_name": summary["run_name"], "layer": catalog.layer, "n_features": catalog.n_features,
        "n_alive": catalog.n_alive, "n_annotated": catalog.n_annotated,
        "annotation_rate": catalog.n_annotated / max(catalog.n_alive, 1), "n_significant_tests": len(significant),
        "bh_alpha": catalog.bh_alpha, "ontology_counts": ontology_counts,
    }
    _write_json(layer_dir / ANNOTATIONS, {"summary": annotation_summary, "feature_annotations": annotated,
                                          "all_significant_tests": significant, "edge_enrichments": edges})


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomically(path, json.dumps(data, indent=2).encode("utf-8"))


def catalog_from_codes(codes: Any, gene_ids: Any, layer: int, k: int, gene_names: dict[int, str] | None = None,
                       top_n: int = 20) -> LayerCatalog:
    """Build a layer catalog from SAE codes ``(positions, n_features)`` and the gene token id of each position.

    Activation frequency is the fraction of positions where a feature is positive; top genes rank the genes by the
    feature's mean activation over the positions where it fires on them (the reference study's definition).
    """
    import numpy as np

    codes = np.asarray(codes, dtype=np.float64)
    gene_ids = np.asarray(gene_ids, dtype=np.int64)
    n_positions, n_features = codes.shape
    active = codes > 0
    fire_count = active.sum(axis=0)
    names = gene_names or {}
    features = []
    for index in range(n_features):
        rows = np.flatnonzero(active[:, index])
        genes, inverse = np.unique(gene_ids[rows], return_inverse=True)
        sums = np.bincount(inverse, weights=codes[rows, index], minlength=len(genes))
        counts = np.bincount(inverse, minlength=len(genes))
        means = sums / np.maximum(counts, 1)
        order = sorted(range(len(genes)), key=lambda i: (-means[i], int(genes[i])))[:top_n]
        features.append(CatalogFeature(
            index=index, activation_freq=float(fire_count[index] / max(n_positions, 1)),
            mean_activation=float(codes[:, index].sum() / max(n_positions, 1)), fire_count=int(fire_count[index]),
            is_dead=bool(fire_count[index] == 0), n_unique_genes=len(genes),
            top_genes=[TopGene(int(genes[i]), names.get(int(genes[i]), f"token_{int(genes[i])}"), float(means[i]),
                               int(counts[i])) for i in order]))
    return LayerCatalog(layer=layer, n_features=n_features, k=k, features=features)
