"""Training TopK SAEs on a model's residual stream, and the feature catalog of each trained SAE.

The reference recipe: per layer, the hidden states at gene positions (CLS/EOS/pad left out), a TopK SAE with
``expansion * d_model`` features and ``k`` active, inputs centred by the layer's activation mean, decoder rows kept
at unit norm, trained on mean squared reconstruction error with Adam. The catalog pass then encodes every gene
position of every cell and keeps, per feature, its activation frequency and the genes it fires on most strongly
(mean activation over the positions where it fires on that gene), streamed so memory does not grow with the cells.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import BertForMaskedLM

from atlas.catalog import CatalogFeature, LayerCatalog, TopGene
from atlas.errors import AtlasError
from atlas.model import n_layers
from atlas.sae.topk import TopKSAE

# Geneformer's special tokens: 0 pad, 1 mask, 2 CLS, 3 EOS (V2); positions holding them are not genes.
DEFAULT_SPECIAL_TOKENS = (0, 1, 2, 3)


@dataclass(frozen=True)
class TrainingConfig:
    """How to train the SAEs of a model (defaults: the reference atlas architecture)."""

    expansion: int = 4
    k: int = 32
    epochs: int = 5
    batch_size: int = 4096
    learning_rate: float = 1e-3
    max_positions: int = 500_000
    cell_batch_size: int = 8
    top_genes: int = 20
    seed: int = 0


@dataclass
class TrainedLayer:
    """One layer's trained SAE, its catalog, and how well it reconstructs (fraction of variance explained)."""

    layer: int
    sae: TopKSAE
    catalog: LayerCatalog
    explained_variance: float
    n_positions: int


def _cell_batches(input_ids: Sequence[np.ndarray], batch_size: int, pad_id: int
                  ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(input_ids), batch_size):
        batch = input_ids[start:start + batch_size]
        width = max(len(ids) for ids in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, cell in enumerate(batch):
            ids[row, : len(cell)] = torch.as_tensor(cell, dtype=torch.long)
            mask[row, : len(cell)] = 1
        yield ids, mask


@torch.no_grad()
def gene_position_states(
    model: BertForMaskedLM,
    input_ids: Sequence[np.ndarray],
    layers: Sequence[int],
    *,
    special_tokens: Sequence[int] = DEFAULT_SPECIAL_TOKENS,
    cell_batch_size: int = 8,
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[dict[int, torch.Tensor], torch.Tensor]]:
    """Per batch of cells: layer -> hidden states ``(gene positions, d_model)`` and each position's gene token.

    Layer ``l`` is the output of transformer block ``l`` (``hidden_states[l + 1]``), as everywhere in the atlas.
    """
    pad_id = model.config.pad_token_id or 0
    specials = torch.as_tensor(sorted(set(special_tokens)), dtype=torch.long)
    for ids, mask in _cell_batches(input_ids, cell_batch_size, pad_id):
        outputs = model.bert(input_ids=ids.to(device), attention_mask=mask.to(device), output_hidden_states=True)
        genes = mask.bool() & ~torch.isin(ids, specials)
        gene_rows = genes.to(device)
        yield {layer: outputs.hidden_states[layer + 1][gene_rows].float() for layer in layers}, ids[genes]
        if progress is not None:
            progress(ids.shape[0])


def _check_layers(model: BertForMaskedLM, layers: Sequence[int]) -> list[int]:
    layers = sorted(set(layers))
    bad = [layer for layer in layers if not 0 <= layer < n_layers(model)]
    if bad or not layers:
        raise AtlasError(f"layers {bad or '(none)'} not in 0..{n_layers(model) - 1}")
    return layers


@dataclass
class ActivationSample:
    """Training activations per layer, the gene token of each sampled position, and whether every position is in."""

    activations: dict[int, torch.Tensor]
    genes: torch.Tensor
    complete: bool


def sample_activations(
    model: BertForMaskedLM,
    input_ids: Sequence[np.ndarray],
    layers: Sequence[int],
    config: TrainingConfig,
    *,
    special_tokens: Sequence[int] = DEFAULT_SPECIAL_TOKENS,
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> ActivationSample:
    """Gene-position hidden states of ``layers``: a uniform sample of at most max_positions (all when they fit)."""
    layers = _check_layers(model, layers)
    total = sum(int(np.count_nonzero(~np.isin(ids, special_tokens))) for ids in input_ids)
    keep_rate = min(1.0, config.max_positions / max(total, 1))
    generator = torch.Generator().manual_seed(config.seed)
    kept: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    kept_genes = []
    for states, genes in gene_position_states(model, input_ids, layers, special_tokens=special_tokens,
                                              cell_batch_size=config.cell_batch_size, device=device,
                                              progress=progress):
        chosen = torch.rand(genes.shape[0], generator=generator) < keep_rate
        kept_genes.append(genes[chosen])
        for layer in layers:
            kept[layer].append(states[layer][chosen.to(states[layer].device)].cpu())
    genes = torch.cat(kept_genes)
    if genes.shape[0] == 0:
        raise AtlasError("the cells hold no gene positions to train on")
    return ActivationSample({layer: torch.cat(rows) for layer, rows in kept.items()}, genes, keep_rate >= 1.0)


def train_topk_sae(activations: torch.Tensor, config: TrainingConfig, device: torch.device | str = "cpu",
                   progress: Callable[[int], None] | None = None) -> TopKSAE:
    """Fit a TopK SAE to ``activations`` ``(positions, d_model)``: centred inputs, unit-norm decoder rows, Adam."""
    d_model = activations.shape[1]
    n_features = config.expansion * d_model
    if not 0 < config.k <= n_features:
        raise AtlasError(f"k={config.k} must be in 1..{n_features} (expansion {config.expansion} x d {d_model})")
    generator = torch.Generator().manual_seed(config.seed)
    sae = TopKSAE(d_model, n_features, config.k, activations.mean(dim=0))
    with torch.no_grad():
        sae.decoder_weight.copy_(torch.randn(n_features, d_model, generator=generator))
        sae.normalize_decoder()
        sae.encoder_weight.copy_(sae.decoder_weight)
        sae.decoder_bias.zero_()
    sae = sae.to(device).train()
    data = activations.to(device)
    optimizer = torch.optim.Adam(sae.parameters(), lr=config.learning_rate)
    for _ in range(config.epochs):
        order = torch.randperm(data.shape[0], generator=generator).to(device)
        for start in range(0, data.shape[0], config.batch_size):
            batch = data[order[start:start + config.batch_size]]
            loss = (sae(batch) - batch).pow(2).sum(dim=-1).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            _drop_parallel_gradient(sae)
            optimizer.step()
            sae.normalize_decoder()
        if progress is not None:
            progress(1)
    return sae.eval()


@torch.no_grad()
def _drop_parallel_gradient(sae: TopKSAE) -> None:
    """Remove the part of the decoder gradient that only changes row norms (they are renormalised anyway)."""
    grad = sae.decoder_weight.grad
    if grad is not None:
        rows = sae.decoder_weight
        grad.sub_((grad * rows).sum(dim=1, keepdim=True) * rows)


@torch.no_grad()
def explained_variance(sae: TopKSAE, activations: torch.Tensor, batch_size: int = 8192) -> float:
    """1 - residual variance / total variance of the reconstruction of ``activations``."""
    device = sae.mean.device
    residual = total = 0.0
    mean = activations.mean(dim=0).to(device)
    for start in range(0, activations.shape[0], batch_size):
        batch = activations[start:start + batch_size].to(device)
        residual += float((sae(batch) - batch).pow(2).sum())
        total += float((batch - mean).pow(2).sum())
    return 1.0 - residual / max(total, 1e-30)


class CatalogAccumulator:
    """Streams SAE codes of gene positions into per-feature firing counts and per-(gene, feature) sums."""

    def __init__(self, n_features: int, vocab_size: int, device: torch.device | str = "cpu") -> None:
        self.n_features = n_features
        self.positions = 0
        self.fire_count = torch.zeros(n_features, dtype=torch.float64, device=device)
        self.activation_sum = torch.zeros(n_features, dtype=torch.float64, device=device)
        self.gene_sum = torch.zeros(vocab_size, n_features, dtype=torch.float32, device=device)
        self.gene_count = torch.zeros(vocab_size, n_features, dtype=torch.int32, device=device)

    def add(self, codes: torch.Tensor, genes: torch.Tensor) -> None:
        """Count one batch: ``codes`` ``(positions, n_features)`` and the gene token of each position."""
        genes = genes.to(codes.device)
        active = codes > 0
        self.positions += codes.shape[0]
        self.fire_count += active.sum(dim=0)
        self.activation_sum += codes.sum(dim=0, dtype=torch.float64)
        self.gene_sum.index_add_(0, genes, codes.float())
        self.gene_count.index_add_(0, genes, active.int())

    def catalog(self, layer: int, k: int, gene_names: dict[int, str], top_n: int = 20) -> LayerCatalog:
        """The layer's catalog: frequency, mean activation and the top genes of every feature."""
        means = torch.where(self.gene_count > 0, self.gene_sum / self.gene_count.clamp_min(1), -1.0).cpu()
        counts = self.gene_count.cpu()
        fire = self.fire_count.cpu().numpy()
        total = max(self.positions, 1)
        features = []
        for index in range(self.n_features):
            fired_on = torch.nonzero(counts[:, index]).flatten()
            # descending mean activation, ties by ascending token id (the nonzero order)
            order = fired_on[torch.argsort(-means[fired_on, index], stable=True)][:top_n].tolist()
            features.append(CatalogFeature(
                index=index, activation_freq=float(fire[index] / total),
                mean_activation=float(self.activation_sum[index] / total), fire_count=int(fire[index]),
                is_dead=bool(fire[index] == 0), n_unique_genes=int(fired_on.numel()),
                top_genes=[TopGene(gene, gene_names.get(gene, f"token_{gene}"), float(means[gene, index]),
                                   int(counts[gene, index])) for gene in order]))
        return LayerCatalog(layer=layer, n_features=self.n_features, k=k, features=features)


@torch.no_grad()
def build_catalogs(
    model: BertForMaskedLM,
    input_ids: Sequence[np.ndarray],
    saes: dict[int, TopKSAE],
    gene_names: dict[int, str],
    *,
    special_tokens: Sequence[int] = DEFAULT_SPECIAL_TOKENS,
    top_n: int = 20,
    cell_batch_size: int = 8,
    device: torch.device | str = "cpu",
    progress: Callable[[int], None] | None = None,
) -> dict[int, LayerCatalog]:
    """Encode every gene position of every cell with each layer's SAE and build the layers' catalogs."""
    vocab = int(model.config.vocab_size)
    accumulators = {layer: CatalogAccumulator(sae.n_features, vocab, device) for layer, sae in saes.items()}
    for states, genes in gene_position_states(model, input_ids, list(saes), special_tokens=special_tokens,
                                              cell_batch_size=cell_batch_size, device=device, progress=progress):
        for layer, sae in saes.items():
            accumulators[layer].add(sae.encode(states[layer]), genes)
    return {layer: accumulators[layer].catalog(layer, saes[layer].k, gene_names, top_n)
            for layer in saes}


@torch.no_grad()
def catalogs_from_sample(sample: ActivationSample, saes: dict[int, TopKSAE], vocab_size: int,
                         gene_names: dict[int, str], top_n: int = 20, batch_size: int = 8192
                         ) -> dict[int, LayerCatalog]:
    """The layers' catalogs from stored activations (when they hold every gene position, no model pass is needed)."""
    catalogs = {}
    for layer, sae in saes.items():
        device = sae.mean.device
        accumulator = CatalogAccumulator(sae.n_features, vocab_size, device)
        for start in range(0, sample.genes.shape[0], batch_size):
            states = sample.activations[layer][start:start + batch_size].to(device)
            accumulator.add(sae.encode(states), sample.genes[start:start + batch_size])
        catalogs[layer] = accumulator.catalog(layer, sae.k, gene_names, top_n)
    return catalogs


def train_layers(
    model: BertForMaskedLM,
    input_ids: Sequence[np.ndarray],
    layers: Sequence[int],
    gene_names: dict[int, str],
    config: TrainingConfig = TrainingConfig(),
    *,
    special_tokens: Sequence[int] = DEFAULT_SPECIAL_TOKENS,
    device: torch.device | str = "cpu",
    progress: Callable[[str, int, int], None] | None = None,
) -> list[TrainedLayer]:
    """Train one TopK SAE per layer and build its catalog; ``progress(stage, done, total)`` reports each stage."""
    model = model.to(device).eval()
    layers = _check_layers(model, layers)

    def stage(name: str, total: int) -> Callable[[int], None] | None:
        if progress is None:
            return None
        done = [0]

        def step(count: int) -> None:
            done[0] += count
            progress(name, done[0], total)
        return step

    sample = sample_activations(model, input_ids, layers, config, special_tokens=special_tokens, device=device,
                                progress=stage("activations", len(input_ids)))
    saes = {}
    for layer in layers:
        saes[layer] = train_topk_sae(sample.activations[layer], config, device,
                                     progress=stage(f"train layer {layer}", config.epochs))
    if sample.complete:
        catalogs = catalogs_from_sample(sample, saes, int(model.config.vocab_size), gene_names, config.top_genes)
    else:
        catalogs = build_catalogs(model, input_ids, saes, gene_names, special_tokens=special_tokens,
                                  top_n=config.top_genes, cell_batch_size=config.cell_batch_size, device=device,
                                  progress=stage("catalog", len(input_ids)))
    return [TrainedLayer(layer, saes[layer], catalogs[layer],
                         explained_variance(saes[layer], sample.activations[layer]),
                         int(sample.activations[layer].shape[0])) for layer in layers]
