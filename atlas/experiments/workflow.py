"""End-to-end experiment runs from paths: load model, SAEs and cells, run, write a results directory.

The CLI is a thin layer over :func:`run_ablation` and :func:`run_steering`; a notebook can call them too, or the
lower-level :func:`atlas.experiments.ablation.ablate` and :func:`atlas.experiments.steering.steer` with objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from atlas.cells import Cells, load_cells, load_dictionary, token_gene_names
from atlas.errors import AtlasError
from atlas.experiments.features import FeatureRef, FeatureSet, parse_feature, parse_feature_set
from atlas.experiments.results import run_record, save_tables
from atlas.experiments.selection import select_sets
from atlas.progress import StageProgress


@dataclass(frozen=True)
class CellSource:
    """Where the cells come from and how to tokenize them."""

    path: Path
    token_dictionary: Path | None = None
    gene_median_dictionary: Path | None = None
    n_cells: int | None = None
    max_length: int = 2048

    def load(self) -> Cells:
        """The cells as token sequences."""
        return load_cells(self.path, token_dictionary=self.token_dictionary,
                          gene_median_dictionary=self.gene_median_dictionary, max_length=self.max_length,
                          n_cells=self.n_cells)


def _load_model(model_dir: Path, device: str):
    from atlas.model import load_model, resolve_device

    resolved = resolve_device(device)
    return load_model(model_dir, resolved), resolved


def _load_saes(saes_dir: Path, layers: Sequence[int], device) -> dict:
    from atlas.sae.biosae import load_sae_set

    return load_sae_set(saes_dir, sorted(set(layers)), device)


def _names(model_dir: Path, saes_dir: Path) -> tuple[str, str]:
    from atlas.model import model_name

    return model_name(model_dir), Path(saes_dir).resolve().name


def choose_sets(saes_dir: Path, explicit: Sequence[str], selections: Sequence[str], layers: Sequence[int],
                order: int, n_sets: int, seed: int, min_frequency: float) -> list[FeatureSet]:
    """Explicit sets (``5:12,5:40``) followed by automatically selected ones (catalogs of ``layers``)."""
    sets = [parse_feature_set(text, f"explicit-{i:03d}") for i, text in enumerate(explicit)]
    if selections:
        from atlas.catalog import read_catalogs

        if not layers:
            raise AtlasError("automatic selection needs --layers to choose features from")
        catalogs = read_catalogs(saes_dir)
        for selection in selections:
            sets += select_sets(catalogs, layers, selection, order, n_sets, seed, min_frequency)
    if not sets:
        raise AtlasError("no feature set: give --set LAYER:INDEX,... or --select same-pathway|cross-pathway|random")
    return sets


def run_ablation(model_dir: Path, saes_dir: Path, cells: CellSource, out_dir: Path, sets: Sequence[FeatureSet], *,
                 target_layer: int | None = None, batch_size: int = 64, min_effect: float = 0.5,
                 tolerance: float = 0.1, device: str = "auto", run_id: str | None = None,
                 progress: StageProgress | None = None) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Ablate ``sets`` on the cells and write the results directory; returns the Run record and the tables."""
    from atlas.experiments.ablation import ablate
    from atlas.model import n_layers

    cell_set = cells.load()
    model, device_ = _load_model(model_dir, device)
    target_layer = n_layers(model) - 1 if target_layer is None else target_layer
    member_layers = [member.layer for feature_set in sets for member in feature_set.members]
    saes = _load_saes(saes_dir, [*member_layers, target_layer], device_)
    result = ablate(model, saes, cell_set.input_ids, sets, target_layer, batch_size=batch_size,
                    min_effect=min_effect, tolerance=tolerance, device=device_, progress=progress)
    model_name, sae_name = _names(model_dir, saes_dir)
    thresholds = {"min_effect": min_effect, "tolerance": tolerance, "target_layer": target_layer}
    identity = [[str(m) for m in s.members] for s in sets]
    run = run_record("ablation", model_name, sae_name, cell_set.n_cells, cell_set.digest, thresholds, identity,
                     run_id)
    tables = {"sets": result.sets, "targets": result.targets, "orders": result.orders,
              "conditions": result.conditions}
    save_tables(out_dir, run, tables)
    return run, tables


def read_cell_column(path: Path, column: str, n_cells: int) -> np.ndarray:
    """One value per cell from a .csv/.tsv/.parquet table, an .h5ad's obs, or a .npy vector (first ``n_cells``)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise AtlasError(f"{path}: file not found")
    if suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise AtlasError(f"{path}: not a plain .npy array ({error})") from None
    else:
        if suffix in (".csv", ".tsv"):
            table = pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",")
        elif suffix == ".parquet":
            table = pd.read_parquet(path)
        elif suffix == ".h5ad":
            import anndata

            table = anndata.read_h5ad(path, backed="r").obs
        else:
            raise AtlasError(f"{path}: expected .csv, .tsv, .parquet, .h5ad or .npy")
        if column not in table.columns:
            raise AtlasError(f"{path} has no column {column!r} (columns: {', '.join(map(str, table.columns))})")
        values = table[column].to_numpy()
    values = np.asarray(values).reshape(-1)
    if len(values) < n_cells:
        raise AtlasError(f"{path} has {len(values)} values for {n_cells} cells")
    return values[:n_cells]


def _gene_names(saes_dir: Path, token_dictionary: Path | None, gene_name_dictionary: Path | None
                ) -> dict[int, str] | None:
    """Token -> gene name from the Geneformer dictionaries, else from the SAE catalogs' top genes, else None."""
    if token_dictionary is not None:
        return token_gene_names(load_dictionary(token_dictionary),
                                load_dictionary(gene_name_dictionary) if gene_name_dictionary else None)
    from atlas.catalog import read_catalogs

    names = {gene.gene_id: gene.gene_name for catalog in read_catalogs(saes_dir).values()
             for feature in catalog.features for gene in feature.top_genes}
    return names or None


@dataclass(frozen=True)
class PseudotimeSource:
    """A given pseudotime column, or the root rule (and optional labels) of diffusion pseudotime."""

    path: Path | None = None
    column: str = "pseudotime"
    root_rule: str = "dc1-min"
    labels_path: Path | None = None
    label_column: str = "cell_type"
    n_neighbors: int = 15


def run_steering(model_dir: Path, saes_dir: Path, cells: CellSource, out_dir: Path, *,
                 layers: Sequence[int] | None = None, features: Sequence[str] = (),
                 alphas: Sequence[float] = (0.0, 2.0, 4.0), pseudotime: PseudotimeSource = PseudotimeSource(),
                 extreme_fraction: float = 0.2, switch_threshold: float = 0.8, max_features: int = 10,
                 top_genes: int = 10, gene_name_dictionary: Path | None = None, centered: bool = False,
                 batch_size: int = 32, device: str = "auto", run_id: str | None = None,
                 progress: StageProgress | None = None) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Steer switch features (or ``features``) at every alpha and write the results directory."""
    from atlas.experiments.steering import steer

    refs: list[FeatureRef] = [parse_feature(text) for text in features]
    if not refs and not layers:
        raise AtlasError("give --layers to search for switch features, or --feature LAYER:INDEX")
    cell_set = cells.load()
    steer_layers = sorted({ref.layer for ref in refs} or set(layers or ()))
    model, device_ = _load_model(model_dir, device)
    saes = _load_saes(saes_dir, steer_layers, device_)
    given = None if pseudotime.path is None else read_cell_column(pseudotime.path, pseudotime.column,
                                                                   cell_set.n_cells).astype(np.float64)
    labels = None if pseudotime.labels_path is None else read_cell_column(
        pseudotime.labels_path, pseudotime.label_column, cell_set.n_cells)
    names = _gene_names(saes_dir, cells.token_dictionary, gene_name_dictionary)
    result = steer(model, saes, cell_set.input_ids, layers=steer_layers, features=refs or None, alphas=alphas,
                   pseudotime=given, root_rule=pseudotime.root_rule, labels=labels,
                   extreme_fraction=extreme_fraction, switch_threshold=switch_threshold, max_features=max_features,
                   top_genes=top_genes, gene_names=names, batch_size=batch_size, n_neighbors=pseudotime.n_neighbors,
                   centered=centered, device=device_, progress=progress)
    model_name, sae_name = _names(model_dir, saes_dir)
    source = f"column {pseudotime.column} of {pseudotime.path}" if pseudotime.path else \
        f"diffusion pseudotime, root {pseudotime.root_rule}"
    thresholds = {"alphas": result.alphas, "extreme_fraction": extreme_fraction, "switch_threshold": switch_threshold,
                  "max_features": max_features, "pseudotime": source, "layers": steer_layers, "centered": centered}
    run = run_record("steering", model_name, sae_name, cell_set.n_cells, cell_set.digest, thresholds,
                     [str(ref) for ref in refs], run_id)
    group = np.full(cell_set.n_cells, "", dtype=object)
    group[result.extremes.early], group[result.extremes.late] = "early", "late"
    tables = {"results": result.results, "layers": result.layers, "switch": result.switch, "cells": result.cells,
              "pseudotime": pd.DataFrame({"cell": np.arange(cell_set.n_cells), "pseudotime": result.pseudotime,
                                          "group": group, "root": np.arange(cell_set.n_cells) == result.root})}
    save_tables(out_dir, run, tables)
    return run, tables
