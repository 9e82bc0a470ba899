"""Response models of the JSON API: the field names and types its OpenAPI schema documents.

They mirror the documents of :mod:`atlas.analysis.browse`; numbers that can be missing (q before finalisation,
a NaN statistic) are nullable, never NaN or Infinity.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    """Every 4xx/5xx answer: one line saying what went wrong."""

    error: str


class RunOut(BaseModel):
    """A run as its Run node describes it."""

    id: str
    kind: str | None = None
    model: str | None = None
    sae: str | None = None
    source_layer: int | None = None
    downstream_layers: list[int] | None = None
    n_cells: int | None = None
    edge_count: int | None = Field(None, description="edges the loader wrote")
    status: str | None = Field(None, description="loading, loaded or partial")
    created_at: str | None = None
    visible_shards: int = Field(description="shards whose edges readers see")
    shards: int = Field(description="shards loaded")
    calibrated: bool = Field(description="its edges carry perm_p and perm_q (`atlas trace calibrate`)")


class HubOut(BaseModel):
    """A feature ranked like `atlas analyze hubs` (out-degree, then total degree, descending; then uid)."""

    run: str
    uid: str
    layer: int | None = None
    label: str | None = None
    annotated: bool
    out_degree: int
    in_degree: int
    hub_rank: int = Field(description="1 = the largest out-degree of the run")
    percentile: float | None = Field(None, description="share of the run's source features with out-degree <= this")


class DegreeSummary(BaseModel):
    edges: int
    source_features: int
    target_features: int
    mean_out_degree: float | None = None
    median_out_degree: float | None = None
    max_out_degree: int | None = None


class HistogramBin(BaseModel):
    low: float
    high: float
    features: int


class AttenuationRow(BaseModel):
    run: str
    layer: int
    edges: int
    excitatory: int


class RunDocument(BaseModel):
    """A run at a glance."""

    run: RunOut
    degrees: DegreeSummary
    histogram: list[HistogramBin] = Field(description="source out-degrees in equal-width bins")
    hubs: list[HubOut]
    attenuation: list[AttenuationRow] = Field(description="edges per downstream layer")


class TermLink(BaseModel):
    id: str
    name: str | None = None
    source: str | None = None
    p_adj: float | None = None


class TopGene(BaseModel):
    id: str | None = None
    symbol: str | None = None
    rank: int | None = None
    weight: float | None = None


class SteeringOut(BaseModel):
    run: str | None = None
    alpha: float | None = None
    mean_ds: float | None = None
    fraction_positive: float | None = None
    n_cells: int | None = None
    top_up: list[str] | None = None
    top_down: list[str] | None = None


class InteractionOut(BaseModel):
    interaction: str | None = None
    run: str | None = None
    definition: str | None = Field(None, description="how conditions were averaged (whole-set by default)")
    selection: str | None = None
    term: str | None = None
    order: int | None = None
    members: list[str] | None = None
    n_targets: int | None = None
    median_redundancy: float | None = None
    median_interaction: float | None = None
    fraction_subadditive: float | None = None
    fraction_superadditive: float | None = None
    mean_abs_interaction: float | None = None


class RunDegreesOut(BaseModel):
    run: str
    out_degree: int
    in_degree: int
    hub_rank: int
    percentile: float | None = None


class FeatureDocument(BaseModel):
    """Everything a feature page shows."""

    uid: str
    model: str | None = None
    sae: str | None = None
    layer: int | None = None
    index: int | None = None
    label: str | None = None
    activation_freq: float | None = None
    annotated: bool
    terms: list[TermLink]
    top_genes: list[TopGene]
    runs: list[RunDegreesOut] = Field(description="per run with edges of this feature: degrees and hub rank")
    interactions: list[InteractionOut]
    steering: list[SteeringOut]


class EdgeOut(BaseModel):
    run: str
    neighbour: str = Field(description="the target (direction out) or the source (direction in)")
    neighbour_layer: int | None = None
    neighbour_label: str | None = None
    sign: str | None = None
    d: float | None = Field(None, description="Cohen's d")
    mean: float | None = None
    std: float | None = None
    consistency: float | None = None
    n: int | None = None
    p: float | None = None
    q: float | None = None
    perm_p: float | None = Field(None, description="permutation p (`atlas trace calibrate`); null when uncalibrated")
    perm_q: float | None = Field(None, description="BH q of perm_p; null when uncalibrated")


class EdgePage(BaseModel):
    uid: str
    direction: str
    total: int = Field(description="edges that match the filters, over all pages")
    offset: int
    limit: int
    edges: list[EdgeOut]


class NodeOut(BaseModel):
    uid: str
    layer: int | None = None
    label: str | None = None
    annotated: bool
    center: bool


class NeighbourhoodEdge(BaseModel):
    hop: int = Field(description="1: an edge of the feature; 2: an edge of a neighbour")
    run: str
    source: str
    target: str
    d: float | None = None
    sign: str | None = None
    strength: float | None = Field(None, description="what the edge was ranked by: |d| on hop 1; on hop 2 the weaker "
                                                     "of |d| and the |d| of the strongest hop-1 edge reaching it")


class Neighbourhood(BaseModel):
    uid: str
    run: str | None = None
    hops: int
    limit: int
    nodes: list[NodeOut]
    edges: list[NeighbourhoodEdge]


class FeatureLink(BaseModel):
    uid: str
    layer: int | None = None
    label: str | None = None
    rank: int | None = None
    weight: float | None = None
    p_adj: float | None = None


class GeneDocument(BaseModel):
    id: str | None = None
    symbol: str | None = None
    features: list[FeatureLink]
    terms: list[TermLink]


class TermDocument(BaseModel):
    id: str
    name: str | None = None
    source: str | None = None
    genes: int
    features: list[FeatureLink]


class GeneLink(BaseModel):
    id: str | None = None
    symbol: str | None = None


class SearchResult(BaseModel):
    q: str
    features: list[FeatureLink]
    genes: list[GeneLink]
    terms: list[TermLink]
