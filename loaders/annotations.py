"""Feature catalogs, their enrichment annotations and GMT gene sets as graph rows, and their online loader.

Rows (:class:`AnnotationRows`) are plain dicts keyed by the schema's property names; the online loader MERGEs them
(reruns change nothing) and the offline import writer turns the same rows into CSV. A new source of annotations
(e.g. an enrichment of catalog top genes against a GMT library) only has to build rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import queries
from atlas.catalog import LayerCatalog, read_catalogs
from atlas.db.connection import Graph
from atlas.errors import AtlasError
from atlas.gmt import GeneSet, library_name, read_gmt
from atlas.plain import plain
from loaders.schema import apply_schema, feature_uid, gene_id, term_id

BATCH_SIZE = 5_000


@dataclass
class AnnotationRows:
    """Nodes and relationships of annotations, deduplicated by key (first node wins, best-ranked edge wins)."""

    features: dict[str, dict[str, Any]] = field(default_factory=dict)     # uid -> Feature properties
    genes: dict[str, dict[str, Any]] = field(default_factory=dict)        # id -> Gene properties
    terms: dict[str, dict[str, Any]] = field(default_factory=dict)        # id -> Term properties
    top_genes: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)    # (feature, gene) -> props
    enriched_in: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)  # (feature, term) -> props
    member_of: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)    # (gene, term) -> {}
    gene_sets: set[str] = field(default_factory=set)  # term ids whose whole membership these rows give (GMT sets)

    def add_gene(self, name: str) -> str:
        """Add a gene by symbol or Ensembl id (first spelling wins); return its id."""
        key = gene_id(name)
        self.genes.setdefault(key, {"id": key, "symbol": name.strip()})
        return key

    def add_term(self, source: str, name: str, description: str | None = None) -> str:
        """Add a term of a library; a later description fills one that was missing. Return its id."""
        key = term_id(source, name)
        term = self.terms.setdefault(key, {"id": key, "name": name, "source": source, "description": None})
        term["description"] = term["description"] or description or None
        return key

    def add_enrichment(self, feature: str, source: str, term: str, p_adj: float | None = None,
                       odds_ratio: float | None = None, n_overlap: int | None = None) -> None:
        """Add a feature's enrichment in a term of a library (the first result for a pair wins: add best first)."""
        key = self.add_term(source, term)
        self.enriched_in.setdefault((feature, key), {"p_adj": p_adj, "odds_ratio": plain(odds_ratio),
                                                     "n_overlap": n_overlap})

    def merge(self, other: AnnotationRows) -> AnnotationRows:
        """Add another set of rows (this one's entries win on equal keys)."""
        for name in ("features", "genes", "top_genes", "enriched_in", "member_of"):
            mine = getattr(self, name)
            for key, value in getattr(other, name).items():
                mine.setdefault(key, value)
        for term in other.terms.values():
            self.add_term(term["source"], term["name"], term["description"])
        self.gene_sets |= other.gene_sets
        return self

    def replacements(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """What these rows say in full: each catalog feature's top genes and terms, each gene set's members.

        A feature's catalog entry and a GMT set are authoritative, so a reload removes the links they no longer
        list (a retrained SAE's new top genes, a gene set's new version) instead of keeping stale ones.
        """
        features = {uid: {"uid": uid, "genes": [], "terms": []} for uid in self.features}
        for feature, gene in self.top_genes:
            features[feature]["genes"].append(gene)
        for feature, term in self.enriched_in:
            features[feature]["terms"].append(term)
        sets = {term: {"id": term, "genes": []} for term in self.gene_sets}
        for gene, term in self.member_of:
            if term in sets:
                sets[term]["genes"].append(gene)
        return list(features.values()), list(sets.values())

    def counts(self) -> dict[str, int]:
        """Rows of each kind."""
        return {name: len(getattr(self, name))
                for name in ("features", "genes", "terms", "top_genes", "enriched_in", "member_of")}


def catalog_rows(catalogs: Iterable[LayerCatalog], model: str, sae: str) -> AnnotationRows:
    """Features (activation_freq, annotated, label), their top genes and their enrichment terms."""
    rows = AnnotationRows()
    for catalog in catalogs:
        for feature in catalog.features:
            uid = feature_uid(model, sae, catalog.layer, feature.index)
            rows.features[uid] = {"uid": uid, "model": model, "sae": sae, "layer": catalog.layer,
                                  "index": feature.index, "activation_freq": feature.activation_freq,
                                  "annotated": feature.annotated, "label": feature.label}
            for rank, gene in enumerate(feature.top_genes, start=1):
                rows.top_genes.setdefault((uid, rows.add_gene(gene.gene_name)), {"rank": rank, "weight": gene.weight})
            ranked = sorted(feature.annotations, key=lambda a: math.inf if a.p_adjusted is None else a.p_adjusted)
            for annotation in ranked:
                rows.add_enrichment(uid, annotation.ontology, annotation.term, annotation.p_adjusted,
                                    annotation.odds_ratio, annotation.n_overlap)
    return rows


def gene_set_rows(sets: Iterable[GeneSet], source: str) -> AnnotationRows:
    """Terms of one GMT library (id ``source:name``, description from the file) and their member genes."""
    rows = AnnotationRows()
    for gene_set in sets:
        term = rows.add_term(source, gene_set.name, gene_set.description)
        rows.gene_sets.add(term)
        for gene in gene_set.genes:
            rows.member_of.setdefault((rows.add_gene(gene), term), {})
    return rows


def _pairs(relationships: dict[tuple[str, str], dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"source": source, "target": target, **properties}
            for (source, target), properties in relationships.items()]


# Neo4j's range indexes (behind the uniqueness constraints) refuse keys over about 8 kB; refuse them before writing.
MAX_KEY_BYTES = 4_000


def _refuse_unindexable_keys(rows: AnnotationRows) -> None:
    for kind, keys in (("gene", rows.genes), ("term", rows.terms), ("feature", rows.features)):
        for key in keys:
            size = len(key.encode("utf-8"))
            if size > MAX_KEY_BYTES:
                raise AtlasError(f"{kind} id {key[:40]!r}... is too long ({size:,} bytes; at most "
                                 f"{MAX_KEY_BYTES:,} can be indexed); nothing was loaded")


def load_annotations(graph: Graph, rows: AnnotationRows, batch_size: int = BATCH_SIZE,
                     progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """MERGE the rows (nodes first, then relationships) in batches; return the summed update counters."""
    features, gene_sets = rows.replacements()
    steps = [
        ("annotate_genes", list(rows.genes.values())),
        ("annotate_terms", list(rows.terms.values())),
        ("annotate_features", list(rows.features.values())),
        ("annotate_drop_stale_feature_links", features),
        ("annotate_drop_stale_members", gene_sets),
        ("annotate_top_genes", _pairs(rows.top_genes)),
        ("annotate_enriched_in", _pairs(rows.enriched_in)),
        ("annotate_member_of", _pairs(rows.member_of)),
    ]
    _refuse_unindexable_keys(rows)
    apply_schema(graph)  # MERGE by key relies on the uniqueness constraints
    totals: dict[str, int] = {}
    for name, batch_rows in steps:
        statement = queries.internal(name).text
        for start in range(0, len(batch_rows), batch_size):
            counters = graph.write(statement, rows=batch_rows[start:start + batch_size])
            for key, value in counters.items():
                if isinstance(value, int) and not isinstance(value, bool):
                    totals[key] = totals.get(key, 0) + value
            if progress is not None:
                progress(len(batch_rows[start:start + batch_size]))
    return totals


def _catalog_source(sae_atlas: Path, model: str | None, sae: str | None,
                    layers: Sequence[int] | None) -> AnnotationRows:
    if not model:
        raise AtlasError("--sae-atlas needs --model NAME (the 'model' of your run manifests, used in feature uids)")
    catalogs = read_catalogs(sae_atlas)
    if layers:
        wanted = set(layers)
        missing = sorted(wanted - set(catalogs))
        if missing:
            raise AtlasError(f"{sae_atlas}: no catalog for layer(s) {', '.join(map(str, missing))} "
                             f"(found {', '.join(map(str, sorted(catalogs))) or 'none'})")
        catalogs = {layer: catalogs[layer] for layer in wanted}
    if not catalogs:
        raise AtlasError(f"{sae_atlas}: no layerNN_xE_kK/feature_catalog.json found")
    return catalog_rows(catalogs.values(), model, sae or sae_atlas.resolve().name)


def _gene_set_source(path: Path, source: str | None) -> AnnotationRows:
    return gene_set_rows(read_gmt(path), source or library_name(path))


def annotation_rows(sae_atlas: str | Path | None = None, model: str | None = None, sae: str | None = None,
                    layers: Sequence[int] | None = None, gmt_files: Sequence[str | Path] = (),
                    source: str | None = None) -> AnnotationRows:
    """Every requested source read and checked, as one set of rows (nothing touches the database here)."""
    if source and len(gmt_files) > 1:
        raise AtlasError("--source names one GMT library; give one --gmt per call or let each file name its own")
    rows = AnnotationRows()
    if sae_atlas:
        rows.merge(_catalog_source(Path(sae_atlas), model, sae, layers))
    for path in gmt_files:
        rows.merge(_gene_set_source(Path(path), source))
    return rows
