"""Planning a trace run from paths: preset and layers, the cells' vocabulary against the model's, the source
layer's catalog, the source-feature selection, then the plan (:func:`atlas.trace.run.plan_run`).

``atlas trace plan`` is a thin layer over :func:`plan_trace`; a notebook calls it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from atlas.catalog import CATALOG, LayerCatalog, read_layer_catalog
from atlas.cells import Cells
from atlas.errors import AtlasError
from atlas.model import n_layers
from atlas.runformat import Manifest
from atlas.sae.biosae import find_layer_dirs
from atlas.trace.features import DEFAULT_MIN_FREQUENCY, select_source_features
from atlas.trace.presets import PRESETS, resolve_layers
from atlas.trace.run import TraceConfig, plan_run
from atlas.trace.setup import TraceSetup
from atlas.trace.stats import Thresholds


@dataclass
class PlannedTrace:
    """A written plan: its manifest and what was chosen."""

    run_dir: Path
    manifest: Manifest
    source_layer: int
    downstream_layers: list[int]
    features: np.ndarray
    cells: int
    selection: dict

    def summary(self) -> dict:
        """What `atlas trace plan` prints."""
        return {"run_dir": str(self.run_dir), "run_id": self.manifest.run_id, "source_layer": self.source_layer,
                "downstream_layers": self.downstream_layers, "source_features": len(self.features),
                "cells": self.cells, "units": len(self.manifest.extra["plan"]["units"]),
                "selection": self.selection["method"], "active": self.manifest.active,
                "cell_choice": self.manifest.extra["cells"]}


def check_vocabulary(cells: Cells, setup: TraceSetup) -> None:
    """Refuse cells with token ids beyond the model's vocabulary (cells and model from different sources)."""
    vocab_size = setup.model.config.vocab_size
    for position, tokens in enumerate(cells.input_ids):
        if tokens.size and int(tokens.max()) >= vocab_size:
            raise AtlasError(f"cell {position} has token id {int(tokens.max())}, beyond the model's vocabulary "
                             f"({vocab_size}): cells and model do not match")


def source_catalog(sae_dir: str | Path, source_layer: int) -> LayerCatalog | None:
    """The source layer's feature catalog, when the SAE directory has one."""
    source_dir = find_layer_dirs(sae_dir).get(source_layer)
    return read_layer_catalog(source_dir) if source_dir and (source_dir / CATALOG).is_file() else None


def plan_trace(model_dir: str | Path, sae_dir: str | Path, cells_path: str | Path, run_dir: str | Path, *,
               preset: str = "full-depth", source_layer: int | None = None, downstream: list[int] | None = None,
               feature_spec: str = "all", min_top_genes: int = 10, min_frequency: float = DEFAULT_MIN_FREQUENCY,
               frequency_source: str = "auto", token_dictionary: str | Path | None = None,
               gene_median_dictionary: str | Path | None = None, n_cells: int | None = None, max_length: int = 2048,
               features_per_shard: int = 256, cells_per_shard: int | None = None,
               thresholds: Thresholds | None = None, precision: str = "fp32", batch_size: int | None = None,
               active: str = "topk", sample: int | None = None, seed: int = 42, normalization: str = "geneformer",
               run_id: str | None = None, device: str = "cpu") -> PlannedTrace:
    """Select the source features, validate model, SAEs and cells against each other and write the run's plan
    (``batch_size`` None: chosen from the device's free memory when the run runs; ``active``, ``sample``/``seed``
    and ``normalization``: see :class:`atlas.trace.run.TraceConfig`)."""
    sae_layers = find_layer_dirs(sae_dir)
    source, layers = resolve_layers(preset, source_layer, downstream, sorted(sae_layers))
    config = TraceConfig(model=str(model_dir), saes=str(sae_dir), cells=str(cells_path), source_layer=source,
                         downstream_layers=layers, token_dictionary=_optional(token_dictionary),
                         gene_median_dictionary=_optional(gene_median_dictionary), max_length=max_length,
                         n_cells=n_cells if n_cells is not None else PRESETS[preset].n_cells, precision=precision,
                         batch_size=batch_size, active=active, sample=sample, seed=seed, normalization=normalization)
    cells = config.load_cells()
    setup = config.load_setup(device)
    check_vocabulary(cells, setup)
    features, selection = select_source_features(feature_spec, setup, source_catalog(sae_dir, source),
                                                 cells.input_ids, min_frequency, frequency_source, min_top_genes)
    manifest = plan_run(run_dir, config, features, thresholds=thresholds or Thresholds(),
                        features_per_shard=features_per_shard, cells_per_shard=cells_per_shard, cells=cells,
                        selection=selection, run_id=run_id, model_layers=n_layers(setup.model),
                        sae_features={layer: setup.saes[layer].n_features for layer in [source, *layers]})
    return PlannedTrace(Path(run_dir), manifest, source, layers, features, cells.n_cells, selection)


def _optional(path: str | Path | None) -> str | None:
    return None if path is None else str(path)
