"""Combinatorial ablation: every non-empty subset of a feature set ablated at once, measured at a target layer.

For a set of k features (any layers) each of the ``2**k - 1`` conditions zeroes its members in their own layer's
SAE code and adds the reconstruction change ``-z[:, f] (outer) W_dec[f]`` to the hidden state at gene positions
(never replacing it by the reconstruction), all in one forward: a member at a later layer is encoded from the state
that the earlier ablations of the same condition produced. At the target layer every feature's change is averaged
over gene positions where members are active in the clean pass (``active``: top-k membership or positive code):
under the ``study`` definition a condition's own members, in the cells where one of them is active; under
``whole-set`` any member of the set, in the cells where any member is active. Per condition and target this gives
the tracer's statistics (:mod:`atlas.trace.stats`: mean, std, Cohen's d, consistency, p), so a set of one feature
reproduces the traced edge exactly. Interaction statistics and both definitions: :mod:`atlas.experiments.interactions`.

Fast like the tracer, and built on its pieces: one clean pass per cell caches the hidden states; the conditions of
all sets for a cell run batched (``batch_size`` variants per forward), each batch resuming after the earliest
member layer it needs and stopping at the target layer. A condition whose members all have a zero code in a cell
(inactive, or a top-k member that ReLU zeroed) is exactly the clean pass, so it is not run and its change is zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from transformers import BertForMaskedLM

from atlas.errors import AtlasError
from atlas.experiments.features import FeatureSet
from atlas.experiments.forward import resume
from atlas.experiments.interactions import (
    DEFAULT_TOLERANCE,
    STUDY,
    check_definition,
    condition_label,
    condition_masks,
    members_of,
    order_summary,
    pair_redundancy,
    set_summary,
    target_statistics,
)
from atlas.model import n_layers
from atlas.progress import StageProgress, tracked
from atlas.sae.base import SparseAutoencoder
from atlas.trace.engine import clean_pass
from atlas.trace.setup import GENEFORMER_NON_GENE_TOKENS, TraceSetup
from atlas.trace.stats import WelfordState, layer_statistics

MAX_ORDER = 10


@dataclass
class SetEffects:
    """Per-condition effects of one set: rows are condition masks (row 0 = clean = 0), columns target features."""

    feature_set: FeatureSet
    mean: np.ndarray
    std: np.ndarray
    d: np.ndarray
    consistency: np.ndarray
    n_cells: int  # cells in which at least one member is active
    n_by_condition: np.ndarray  # cells each condition was measured in


@dataclass
class AblationResult:
    """Effects of every set plus the tables that the CLI prints and the loader stores."""

    target_layer: int
    n_cells: int
    min_effect: float
    tolerance: float
    effects: list[SetEffects]
    definition: str = STUDY
    min_consistency: float = 0.7
    sets: pd.DataFrame = field(default_factory=pd.DataFrame)
    targets: pd.DataFrame = field(default_factory=pd.DataFrame)
    orders: pd.DataFrame = field(default_factory=pd.DataFrame)
    conditions: pd.DataFrame = field(default_factory=pd.DataFrame)


def validate_sets(sets: Sequence[FeatureSet], saes: dict[int, SparseAutoencoder], target_layer: int,
                  model_layers: int) -> None:
    """Every member has an SAE and a valid index, members precede the target layer, set ids are unique."""
    if not sets:
        raise AtlasError("no feature sets to ablate")
    if not 0 <= target_layer < model_layers:
        raise AtlasError(f"target layer {target_layer} is outside the model's layers 0..{model_layers - 1}")
    if target_layer not in saes:
        raise AtlasError(f"no SAE for the target layer {target_layer}")
    if len({feature_set.set_id for feature_set in sets}) != len(sets):
        raise AtlasError("feature set ids must be unique")
    for feature_set in sets:
        if not 1 <= feature_set.order <= MAX_ORDER:
            raise AtlasError(f"set {feature_set.set_id} has {feature_set.order} features; 1..{MAX_ORDER} allowed")
        for member in feature_set.members:
            if member.layer not in saes:
                raise AtlasError(f"set {feature_set.set_id}: no SAE for layer {member.layer} ({member})")
            if not 0 <= member.index < saes[member.layer].n_features:
                raise AtlasError(f"set {feature_set.set_id}: {member} is outside layer {member.layer}'s "
                                 f"{saes[member.layer].n_features} features")
            if member.layer >= target_layer:
                raise AtlasError(f"set {feature_set.set_id}: {member} is not before the target layer {target_layer}")


@dataclass(frozen=True)
class _Variant:
    set_index: int
    mask: int


class _CellAblator:
    """Runs the conditions of every set on one cell and returns each condition's mean change per target."""

    def __init__(self, setup: TraceSetup, sets: Sequence[FeatureSet], batch_size: int, definition: str) -> None:
        self.setup, self.sets, self.batch_size = setup, sets, batch_size
        self.per_condition = definition == STUDY
        self.target_layer = setup.last_layer
        self.masks = [condition_masks(feature_set.order) for feature_set in sets]
        self.member_layers = sorted({member.layer for s in sets for member in s.members})

    @torch.no_grad()
    def run(self, tokens: np.ndarray) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per set, ``[2**k - 1, n_targets]`` mean changes and which conditions the cell counts for (row
        ``mask - 1`` is condition ``mask``), or None where no member is active."""
        ids, genes = self.setup.input_ids(tokens)
        results: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(self.sets)
        if not genes.numel():
            return results
        states = clean_pass(self.setup, ids, [*self.member_layers, self.target_layer])
        saes = self.setup.saes
        clean_target = saes[self.target_layer].encode(states[self.target_layer][genes])
        clean_codes = {layer: saes[layer].encode_active(states[layer][genes], self.setup.active)
                       for layer in self.member_layers}
        positions: dict[_Variant, torch.Tensor] = {}
        variants = []
        for set_index, feature_set in enumerate(self.sets):
            active = torch.stack([clean_codes[m.layer][1][:, m.index] for m in feature_set.members])     # (k, G)
            pushes = [bool(clean_codes[m.layer][0][:, m.index].ne(0).any()) for m in feature_set.members]
            if not active.any():
                continue
            counted = np.zeros(len(self.masks[set_index]), dtype=bool)
            for mask in self.masks[set_index]:
                variant = _Variant(set_index, mask)
                members = members_of(mask) if self.per_condition else range(feature_set.order)
                positions[variant] = active[list(members)].any(dim=0)
                counted[mask - 1] = bool(positions[variant].any())
                if counted[mask - 1] and any(pushes[i] for i in members_of(mask)):
                    variants.append(variant)
            results[set_index] = (np.zeros((len(self.masks[set_index]), clean_target.shape[-1])), counted)
        for start in range(0, len(variants), self.batch_size):
            chunk = variants[start:start + self.batch_size]
            mean_change = self._run_batch(chunk, states, genes, clean_target, positions)
            for row, variant in enumerate(chunk):
                results[variant.set_index][0][variant.mask - 1] = mean_change[row]
        return results

    def _plan(self, chunk: list[_Variant], device: torch.device) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
        """Layer -> (feature indices ablated there, ``[batch, m]`` 0/1 coefficient of each variant and feature)."""
        ablated: dict[int, dict[int, list[int]]] = {}
        for row, variant in enumerate(chunk):
            for i, member in enumerate(self.sets[variant.set_index].members):
                if variant.mask >> i & 1:
                    ablated.setdefault(member.layer, {}).setdefault(member.index, []).append(row)
        plan = {}
        for layer, by_feature in ablated.items():
            features = sorted(by_feature)
            coefficients = torch.zeros(len(chunk), len(features), device=device)
            for column, feature in enumerate(features):
                coefficients[by_feature[feature], column] = 1.0
            plan[layer] = (torch.as_tensor(features, device=device), coefficients)
        return plan

    def _run_batch(self, chunk: list[_Variant], states: dict[int, torch.Tensor], genes: torch.Tensor,
                   clean_target: torch.Tensor, positions: dict[_Variant, torch.Tensor]) -> np.ndarray:
        saes = self.setup.saes
        plan = self._plan(chunk, clean_target.device)

        def edit(layer: int, hidden: torch.Tensor) -> torch.Tensor:
            if layer not in plan:
                return hidden
            features, coefficients = plan[layer]
            rows = torch.nonzero(coefficients.any(dim=1)).squeeze(1)
            codes = saes[layer].encode(hidden[rows][:, genes])[..., features] * coefficients[rows][:, None, :]
            hidden = hidden.clone()
            hidden[rows[:, None], genes[None, :]] -= (codes @ saes[layer].W_dec[features]).to(hidden.dtype)
            return hidden

        first = min(plan)
        hidden = states[first].expand(len(chunk), *states[first].shape).clone()
        hidden = resume(self.setup.model, hidden, first, self.target_layer, edit)
        change = saes[self.target_layer].encode(hidden[:, genes]) - clean_target
        weights = torch.stack([positions[variant] for variant in chunk]).to(change.dtype)
        weights = weights / weights.sum(dim=1, keepdim=True).clamp_min(1.0)
        return torch.einsum("bs,bsf->bf", weights, change).double().cpu().numpy()


def ablate(model: BertForMaskedLM, saes: dict[int, SparseAutoencoder], cells: Sequence[np.ndarray],
           sets: Sequence[FeatureSet], target_layer: int | None = None, *, batch_size: int = 64,
           min_effect: float = 0.5, min_consistency: float = 0.7, tolerance: float | None = None,
           definition: str = STUDY, active: str = "topk", device: torch.device | str = "cpu",
           non_gene_tokens: tuple[int, ...] = GENEFORMER_NON_GENE_TOKENS,
           progress: StageProgress | None = None) -> AblationResult:
    """Ablate every non-empty subset of every set on every cell and summarise effects and interactions.

    ``target_layer`` defaults to the model's last layer; ``batch_size`` is how many conditions share a forward
    (1 runs one condition at a time, the reference behaviour); ``definition`` is ``study`` or ``whole-set``
    (:mod:`atlas.experiments.interactions`), ``active`` ``topk`` or ``positive`` (:mod:`atlas.sae.base`).
    """
    target_layer = n_layers(model) - 1 if target_layer is None else int(target_layer)
    validate_sets(sets, saes, target_layer, n_layers(model))
    if batch_size < 1:
        raise AtlasError(f"batch size must be positive, got {batch_size}")
    try:
        check_definition(definition)
    except ValueError as error:
        raise AtlasError(str(error)) from None
    first_layer = min(member.layer for s in sets for member in s.members)
    setup = TraceSetup(model, saes, first_layer, [target_layer], non_gene_tokens, torch.device(device), active)
    ablator = _CellAblator(setup, sets, batch_size, definition)
    width = {target_layer: saes[target_layer].n_features}
    states = [WelfordState.empty(condition_masks(s.order), width, device) for s in sets]
    for tokens in tracked(cells, "ablating", progress):
        for state, measured in zip(states, ablator.run(tokens), strict=True):
            if measured is not None:
                changes, counted = measured
                state.update(state.rows(state.source_features[counted]),
                             {target_layer: torch.as_tensor(changes[counted], device=state.n.device)})
    effects = [_set_effects(feature_set, state, target_layer) for feature_set, state in zip(sets, states, strict=True)]
    return summarise(effects, target_layer, len(cells), min_effect, tolerance, min_consistency, definition)


def _set_effects(feature_set: FeatureSet, state: WelfordState, target_layer: int) -> SetEffects:
    """Tracer statistics of one set's conditions, as ``[2**k, n_targets]`` arrays (zero where n < 2)."""
    width = state.mean[target_layer].shape[1]
    arrays = {name: np.zeros((1 << feature_set.order, width)) for name in ("mean", "std", "d", "consistency")}
    stats = layer_statistics(state, target_layer)
    rows = stats.source_features  # the condition masks measured in at least two cells
    arrays["mean"][rows], arrays["std"][rows], arrays["d"][rows] = stats.mean, stats.std, stats.cohens_d
    arrays["consistency"][rows] = stats.consistency
    n_by_condition = np.zeros(1 << feature_set.order, dtype=np.int64)
    n_by_condition[state.source_features] = state.n.cpu().numpy()
    return SetEffects(feature_set, arrays["mean"], arrays["std"], arrays["d"], arrays["consistency"],
                      int(state.n.max()) if len(state.n) else 0, n_by_condition)


def summarise(effects: list[SetEffects], target_layer: int, n_cells: int, min_effect: float = 0.5,
              tolerance: float | None = None, min_consistency: float = 0.7, definition: str = STUDY
              ) -> AblationResult:
    """Build the set, target, order and condition tables from per-set effects under ``definition``."""
    tolerance = DEFAULT_TOLERANCE[check_definition(definition)] if tolerance is None else tolerance
    set_rows, target_rows, order_rows, condition_rows = [], [], [], []
    for effect in effects:
        feature_set = effect.feature_set
        names = [str(member) for member in feature_set.members]
        identity = {"set_id": feature_set.set_id, "selection": feature_set.selection}
        criteria = {"consistency": effect.consistency, "min_consistency": min_consistency, "definition": definition}
        stats = target_statistics(effect.d, min_effect, tolerance, **criteria)
        by_order = order_summary(effect.d, min_effect, **criteria)
        set_rows.append(identity | {
            "order": feature_set.order, "term": feature_set.term, "members": names,
            "member_layers": [m.layer for m in feature_set.members],
            "member_features": [m.index for m in feature_set.members],
            "target_layer": target_layer, "n_cells": effect.n_cells, "definition": definition,
            "redundancy_by_order": [row["median_redundancy"] for row in by_order],
            "pair_redundancy": pair_redundancy(effect.d, stats.targets, definition)} | set_summary(stats))
        for column, target in enumerate(stats.targets):
            target_rows.append(identity | {
                "target_layer": target_layer, "target_feature": int(target),
                "full_d": stats.full_d[column], "sum_single_abs": stats.sum_single_abs[column],
                "redundancy": stats.redundancy[column], "interaction": stats.interaction[column],
                "marginal_last": stats.marginal_last[column], "max_abs_d": stats.max_abs_d[column],
                "class": stats.classes[column]})
        order_rows += [identity | row for row in by_order]
        for mask in condition_masks(feature_set.order):
            for target in stats.targets:
                condition_rows.append(identity | {
                    "condition": condition_label(mask, names), "mask": mask, "order": mask.bit_count(),
                    "target_feature": int(target), "d": effect.d[mask, target], "mean": effect.mean[mask, target],
                    "consistency": effect.consistency[mask, target], "n_cells": int(effect.n_by_condition[mask])})
    return AblationResult(target_layer, n_cells, min_effect, tolerance, effects, definition, min_consistency,
                          pd.DataFrame(set_rows), pd.DataFrame(target_rows), pd.DataFrame(order_rows),
                          pd.DataFrame(condition_rows))
