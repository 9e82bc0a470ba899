"""Trajectory steering: push one SAE feature up or down and measure how far cells move along pseudotime.

1. A clean pass per cell gives its output logit vector ``z`` (mean over gene positions of the masked-LM logits), a
   representation for pseudotime (mean gene embedding of a layer) and each feature's mean activation.
2. Pseudotime (diffusion pseudotime of the expression or of the embedding, with a root rule; or a user column)
   gives early and late cells (tertiles or extremes) and their mean logit vectors, the early and late signatures.
3. Switch features: Cohen's d of a feature's mean activation between late and early cells; those with
   ``|d| >= switch_threshold`` (the strongest ``max_features`` per layer) are steered, or the features given.
4. Steering at the feature's own layer: ``h' = h + (alpha - 1) * a_f * W_dec[f]`` in the cells where the feature is
   active (``active``: top-k membership or positive code; a member with a_f = 0 moves nothing, ds = 0); the
   remaining layers and the head run batched (every alpha of every feature of a layer in one forward, next to an
   unedited row), and the state shift of a cell is
   ``ds = cos(z', late) - cos(z', early) - [cos(z, late) - cos(z, early)]`` (> 0: toward late).
Per (feature, alpha) over the steered cells where the feature is active: fraction of cells with ``ds > 0``, mean
and spread of ``ds``, the top genes by absolute mean logit change and the genes whose logits rise and fall most;
per layer and alpha, how many steered features push toward late.

The study's protocol is the default (``trajectory_steering.py``): expression pseudotime rooted at the first
haematopoietic stem cell when cells carry types, tertile groups, the early cells steered, alphas 2 and 5, the
population standard deviation (``ddof=0``) as the spread, the top 20 genes. ``steer_cells="all"``,
``groups="extremes"``, ``spread="sample"`` and an embedding pseudotime are this project's earlier protocol.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from transformers import BertForMaskedLM

from atlas.errors import AtlasError
from atlas.experiments.features import FeatureRef
from atlas.experiments.forward import clean_hidden_states, output_logits, resume
from atlas.experiments.pseudotime import (
    Extremes,
    cohens_d_two_groups,
    diffusion_pseudotime,
    expression_pseudotime,
    pseudotime_groups,
    signatures,
)
from atlas.experiments.summaries import layer_summary
from atlas.model import n_layers
from atlas.progress import StageProgress, tracked
from atlas.sae.base import SparseAutoencoder
from atlas.trace.setup import GENEFORMER_NON_GENE_TOKENS

STEER_CELLS = ("early", "all")
SPREADS = {"population": 0, "sample": 1}  # ddof of the state-shift standard deviation


@dataclass
class SteeringResult:
    """Pseudotime, switch features and the steering tables (per feature and alpha, per layer, per cell)."""

    pseudotime: np.ndarray
    root: int | None
    extremes: Extremes
    pseudotime_source: str
    alphas: list[float]
    switch: pd.DataFrame
    results: pd.DataFrame
    layers: pd.DataFrame
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)


def _cosine(vectors: np.ndarray, signature: np.ndarray) -> np.ndarray:
    # row-wise products summed per row: every row is computed alike whatever the number of rows, so equal rows give
    # bit-equal cosines (a matrix-vector product may sum rows of different batches in different orders)
    norms = np.sqrt((vectors * vectors).sum(axis=-1)) * np.sqrt((signature * signature).sum())
    return (vectors * signature).sum(axis=-1) / np.where(norms > 0, norms, 1.0)


def state_shift(steered: np.ndarray, clean: np.ndarray, early: np.ndarray, late: np.ndarray) -> np.ndarray:
    """``ds = cos(z', late) - cos(z', early) - [cos(z, late) - cos(z, early)]`` for rows of steered logits."""
    steered, clean = np.asarray(steered, dtype=np.float64), np.asarray(clean, dtype=np.float64)
    return (_cosine(steered, late) - _cosine(steered, early)) - (_cosine(clean, late) - _cosine(clean, early))


@dataclass
class _CleanCell:
    genes: torch.Tensor
    states: list[torch.Tensor]


class _Model:
    """The model and SAEs with the per-cell helpers steering needs."""

    def __init__(self, model: BertForMaskedLM, saes: Mapping[int, SparseAutoencoder], device: torch.device | str,
                 non_gene_tokens: tuple[int, ...]) -> None:
        self.model, self.saes, self.device = model, saes, device
        self.last_layer = n_layers(model) - 1
        self.special = torch.as_tensor(non_gene_tokens, device=device)

    @torch.no_grad()
    def clean(self, tokens: np.ndarray) -> _CleanCell | None:
        ids, vocabulary = np.asarray(tokens, dtype=np.int64), self.model.config.vocab_size
        if ids.size and (ids.min() < 0 or ids.max() >= vocabulary):
            raise AtlasError(f"a cell has token ids outside the model's vocabulary 0..{vocabulary - 1}")
        genes = torch.nonzero(~torch.isin(torch.as_tensor(ids, device=self.device), self.special)).squeeze(1)
        if not genes.numel():
            return None
        return _CleanCell(genes, clean_hidden_states(self.model, ids, self.device))

    def logits(self, hidden: torch.Tensor, genes: torch.Tensor) -> torch.Tensor:
        """Mean masked-LM logits over gene positions, ``[batch, vocab]`` from ``[batch, seq, d]``."""
        return output_logits(self.model, hidden[:, genes]).mean(dim=1)


@torch.no_grad()
def _profile(runner: _Model, cells: Sequence[np.ndarray], layers: list[int], embedding_layer: int,
             progress: StageProgress | None) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
    """Per cell: clean logit vector, mean gene embedding, and each layer's mean feature activations."""
    logits, embeddings, activations = [], [], {layer: [] for layer in layers}
    for tokens in tracked(cells, "profiling cells", progress):
        cell = runner.clean(tokens)
        if cell is None:
            raise AtlasError("a cell has no gene tokens")
        last = cell.states[runner.last_layer][None]
        logits.append(runner.logits(last, cell.genes)[0].double().cpu().numpy())
        embeddings.append(cell.states[embedding_layer][cell.genes].mean(0).double().cpu().numpy())
        for layer in layers:
            codes = runner.saes[layer].encode(cell.states[layer][cell.genes])
            activations[layer].append(codes.mean(0).double().cpu().numpy())
    return np.stack(logits), np.stack(embeddings), {layer: np.stack(rows) for layer, rows in activations.items()}


def switch_features(activations: Mapping[int, np.ndarray], extremes: Extremes, threshold: float,
                    max_features: int, explicit: Sequence[FeatureRef] | None = None) -> pd.DataFrame:
    """Per layer, Cohen's d (late vs early) of each feature's mean activation; ``selected`` marks those to steer."""
    rows = []
    for layer, values in sorted(activations.items()):
        d = cohens_d_two_groups(values[extremes.late], values[extremes.early])
        if explicit is not None:
            chosen = [ref.index for ref in explicit if ref.layer == layer]
        else:
            candidates = np.flatnonzero(np.abs(d) >= threshold)
            chosen = candidates[np.argsort(-np.abs(d[candidates]), kind="stable")][:max_features].tolist()
        listed = sorted(set(chosen) | set(np.flatnonzero(np.abs(d) >= threshold).tolist()))
        rows += [{"layer": layer, "feature": int(index), "switch_d": float(d[index]),
                  "mean_early": float(values[extremes.early, index].mean()),
                  "mean_late": float(values[extremes.late, index].mean()), "selected": index in chosen}
                 for index in listed]
    return pd.DataFrame(rows, columns=["layer", "feature", "switch_d", "mean_early", "mean_late", "selected"])


class _Accumulator:
    """Per (layer, feature, alpha): ds of every cell where the feature is active, and the summed logit change."""

    def __init__(self) -> None:
        self.ds: dict[tuple[int, int, float], list[tuple[int, float]]] = {}
        self.logit_change: dict[tuple[int, int, float], np.ndarray] = {}

    def add(self, key: tuple[int, int, float], cell: int, ds: float, change: np.ndarray) -> None:
        self.ds.setdefault(key, []).append((cell, ds))
        self.logit_change[key] = self.logit_change.get(key, 0.0) + change


@torch.no_grad()
def _steer_cell(runner: _Model, tokens: np.ndarray, cell_index: int, selected: Mapping[int, list[int]],
                alphas: list[float], early: np.ndarray, late: np.ndarray, origin: np.ndarray, batch_size: int,
                active: str, accumulator: _Accumulator) -> None:
    cell = runner.clean(tokens)
    for layer, features in selected.items():
        sae = runner.saes[layer]
        codes, active_at = sae.encode_active(cell.states[layer][cell.genes], active)
        for feature in features:
            if active_at[:, feature].any() and not codes[:, feature].ne(0).any():
                # active but zero wherever active: nothing moves, exactly as in a rerun of the model
                for alpha in alphas:
                    accumulator.add((layer, feature, alpha), cell_index, 0.0, np.zeros(len(origin)))
        variants = [(feature, alpha) for feature in features if bool(codes[:, feature].ne(0).any())
                    for alpha in alphas]
        for start in range(0, len(variants), batch_size):
            chunk = variants[start:start + batch_size]
            index = torch.as_tensor([feature for feature, _ in chunk], device=codes.device)
            scale = torch.as_tensor([alpha - 1.0 for _, alpha in chunk], device=codes.device, dtype=codes.dtype)
            # row 0 is the unedited cell, so ds is measured against the same batched computation
            push = (codes[:, index].T * scale[:, None])[:, :, None] * sae.W_dec[index][:, None, :]  # (b, G, d)
            hidden = cell.states[layer].expand(len(chunk) + 1, *cell.states[layer].shape).clone()
            hidden[1:, cell.genes] += push.to(hidden.dtype)
            hidden = resume(runner.model, hidden, layer, runner.last_layer)
            logits = runner.logits(hidden, cell.genes).double().cpu().numpy()
            shifts = state_shift(logits[1:] - origin, logits[:1] - origin, early, late)
            for row, (feature, alpha) in enumerate(chunk):
                accumulator.add((layer, feature, alpha), cell_index, float(shifts[row]), logits[row + 1] - logits[0])


def _top_genes(change: np.ndarray, count: int, gene_names: Mapping[int, str] | None
               ) -> tuple[list[str], list[str], list[str]]:
    """The ``count`` genes with the largest absolute mean logit change (the study's list), and those that rise and
    fall most (the signed split)."""
    tokens = np.array(sorted(gene_names)) if gene_names else np.arange(len(change))
    values = change[tokens]
    order = np.argsort(values, kind="stable")
    name = (lambda token: gene_names[int(token)]) if gene_names else (lambda token: f"token:{int(token)}")
    up = [name(tokens[i]) for i in order[::-1][:count] if values[i] > 0]
    down = [name(tokens[i]) for i in order[:count] if values[i] < 0]
    by_size = [name(tokens[i]) for i in np.argsort(-np.abs(values), kind="stable")[:count] if values[i] != 0]
    return by_size, up, down


def steer(model: BertForMaskedLM, saes: Mapping[int, SparseAutoencoder], cells: Sequence[np.ndarray], *,
          layers: Sequence[int] | None = None, features: Sequence[FeatureRef] | None = None,
          alphas: Sequence[float] = (2.0, 5.0), pseudotime: np.ndarray | None = None,
          expression: np.ndarray | None = None, root_rule: str = "auto", labels: np.ndarray | None = None,
          embedding_layer: int | None = None, groups: str = "tertiles", extreme_fraction: float = 0.2,
          steer_cells: str = "early", spread: str = "population", active: str = "topk",
          switch_threshold: float = 0.8, max_features: int = 10, top_genes: int = 20,
          gene_names: Mapping[int, str] | None = None, batch_size: int = 32, n_neighbors: int = 15,
          centered: bool = False, device: torch.device | str = "cpu",
          non_gene_tokens: tuple[int, ...] = GENEFORMER_NON_GENE_TOKENS,
          progress: StageProgress | None = None) -> SteeringResult:
    """Find switch features (or take ``features``) and steer each at every alpha; see the module docstring.

    Pseudotime: ``pseudotime`` as given, else diffusion pseudotime of ``expression`` (cells x genes, log-normalised:
    the study's) when given, else of the mean embedding of ``embedding_layer``. ``groups`` (``tertiles`` or
    ``extremes`` with ``extreme_fraction``) makes early and late cells; ``steer_cells`` (``early`` or ``all``) says
    which are steered; ``spread`` (``population`` or ``sample``) is the estimator of ``std_ds``.
    ``centered=True`` measures the cosines around the mean clean logit vector of all cells rather than around zero
    (the reference definition): raw mean logits of all cells point almost the same way, so uncentred shifts mostly
    follow how a steer scales the logits, while centred ones follow where it moves them between early and late.
    """
    alphas = sorted({float(alpha) for alpha in alphas})
    if not alphas:
        raise AtlasError("no alpha to steer with")
    if batch_size < 1:
        raise AtlasError(f"batch size must be positive, got {batch_size}")
    if steer_cells not in STEER_CELLS:
        raise AtlasError(f"steer cells {steer_cells!r} is not one of {', '.join(STEER_CELLS)}")
    if spread not in SPREADS:
        raise AtlasError(f"spread {spread!r} is not one of {', '.join(SPREADS)}")
    layers = sorted({ref.layer for ref in features} if features else (layers if layers is not None else saes))
    for layer in layers:
        if layer not in saes:
            raise AtlasError(f"no SAE for layer {layer} (available: {sorted(saes)})")
        if not 0 <= layer < n_layers(model):
            raise AtlasError(f"layer {layer} is outside the model's layers 0..{n_layers(model) - 1}")
    for ref in features or ():
        if not 0 <= ref.index < saes[ref.layer].n_features:
            raise AtlasError(f"{ref} is outside layer {ref.layer}'s {saes[ref.layer].n_features} features")
    runner = _Model(model, saes, device, non_gene_tokens)
    embedding_layer = runner.last_layer if embedding_layer is None else embedding_layer
    clean_logits, embeddings, activations = _profile(runner, cells, list(layers), embedding_layer, progress)
    root, source = None, "given"
    if pseudotime is None and expression is not None:
        if len(expression) != len(cells):
            raise AtlasError(f"expression has {len(expression)} rows for {len(cells)} cells")
        (pseudotime, root), source = expression_pseudotime(expression, root_rule, labels, n_neighbors), "expression"
    elif pseudotime is None:
        pseudotime, root = diffusion_pseudotime(embeddings, root_rule, labels, n_neighbors)
        source = f"embedding of layer {embedding_layer}"
    pseudotime = np.asarray(pseudotime, dtype=np.float64)
    if pseudotime.shape != (len(cells),):
        raise AtlasError(f"pseudotime has {pseudotime.size} values for {len(cells)} cells")
    extremes = pseudotime_groups(pseudotime, groups, extreme_fraction)
    # centred: cosines around the mean clean logit vector of all cells instead of around zero
    origin = clean_logits.mean(axis=0) if centered else np.zeros(clean_logits.shape[1])
    early, late = (signature - origin for signature in signatures(clean_logits, extremes))
    switch = switch_features(activations, extremes, switch_threshold, max_features, features)
    selected = {layer: group["feature"].tolist() for layer, group in switch[switch["selected"]].groupby("layer")}
    accumulator = _Accumulator()
    steered = extremes.early if steer_cells == "early" else np.arange(len(cells))
    if selected:
        for cell_index in tracked(steered.tolist(), "steering", progress):
            _steer_cell(runner, cells[cell_index], cell_index, selected, alphas, early, late, origin, batch_size,
                        active, accumulator)
    results, cell_rows = _results(switch, alphas, accumulator, top_genes, gene_names, SPREADS[spread])
    return SteeringResult(pseudotime, root, extremes, source, alphas, switch, results, layer_summary(results),
                          pd.DataFrame(cell_rows, columns=["layer", "feature", "alpha", "cell", "ds"]))


def _results(switch: pd.DataFrame, alphas: list[float], accumulator: _Accumulator, top_genes: int,
             gene_names: Mapping[int, str] | None, ddof: int) -> tuple[pd.DataFrame, list[dict]]:
    rows, cell_rows = [], []
    for record in switch[switch["selected"]].itertuples():
        for alpha in alphas:
            key = (int(record.layer), int(record.feature), alpha)
            observed = accumulator.ds.get(key, [])
            shifts = np.array([ds for _, ds in observed])
            by_size, up, down = _top_genes(accumulator.logit_change[key] / len(observed), top_genes, gene_names) \
                if observed else ([], [], [])
            rows.append({"layer": key[0], "feature": key[1], "alpha": alpha, "switch_d": record.switch_d,
                         "n_cells": len(observed),
                         "fraction_positive": float((shifts > 0).mean()) if observed else float("nan"),
                         "mean_ds": float(shifts.mean()) if observed else float("nan"),
                         "std_ds": float(shifts.std(ddof=ddof)) if len(observed) > ddof else float("nan"),
                         "top_genes": by_size, "top_up": up, "top_down": down})
            cell_rows += [{"layer": key[0], "feature": key[1], "alpha": alpha, "cell": cell, "ds": ds}
                          for cell, ds in observed]
    return pd.DataFrame(rows, columns=["layer", "feature", "alpha", "switch_d", "n_cells", "fraction_positive",
                                       "mean_ds", "std_ds", "top_genes", "top_up", "top_down"]), cell_rows

