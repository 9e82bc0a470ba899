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

from atlas.cells import Cells, load_cells, load_dictionary, read_expression, token_gene_names
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
    sample: int | None = None
    seed: int = 42
    normalization: str = "geneformer"

    def load(self) -> Cells:
        """The cells as token sequences."""
        return load_cells(self.path, token_dictionary=self.token_dictionary,
                          gene_median_dictionary=self.gene_median_dictionary, max_length=self.max_length,
                          n_cells=self.n_cells, sample=self.sample, seed=self.seed, normalization=self.normalization)

    def choice(self) -> dict[str, Any]:
        """How the cells were chosen and encoded, as a run records it."""
        return {"sample": self.sample, "seed": self.seed if self.sample is not None else None,
                "n_cells": self.n_cells,
                "normalization": self.normalization if Path(self.path).suffix.lower() == ".h5ad" else None}


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
                 min_consistency: float = 0.7, tolerance: float | None = None, definition: str = "study",
                 active: str = "topk", device: str = "auto", run_id: str | None = None,
                 progress: StageProgress | None = None) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Ablate ``sets`` on the cells and write the results directory; returns the Run record and the tables.

    The definitions used (``definition``, ``active``) and the cell choice are recorded in the Run's thresholds."""
    from atlas.experiments.ablation import ablate
    from atlas.model import n_layers

    cell_set = cells.load()
    model, device_ = _load_model(model_dir, device)
    target_layer = n_layers(model) - 1 if target_layer is None else target_layer
    member_layers = [member.layer for feature_set in sets for member in feature_set.members]
    saes = _load_saes(saes_dir, [*member_layers, target_layer], device_)
    result = ablate(model, saes, cell_set.input_ids, sets, target_layer, batch_size=batch_size,
                    min_effect=min_effect, min_consistency=min_consistency, tolerance=tolerance,
                    definition=definition, active=active, device=device_, progress=progress)
    model_name, sae_name = _names(model_dir, saes_dir)
    thresholds = {"min_effect": min_effect, "min_consistency": min_consistency, "tolerance": result.tolerance,
                  "target_layer": target_layer, "definition": result.definition, "active": active,
                  "cells": cells.choice()}
    identity = [[str(m) for m in s.members] for s in sets]
    run = run_record("ablation", model_name, sae_name, cell_set.n_cells, cell_set.digest, thresholds, identity,
                     run_id)
    tables = {"sets": result.sets, "targets": result.targets, "orders": result.orders,
              "conditions": result.conditions}
    save_tables(out_dir, run, tables)
    return run, tables


def read_cell_column(path: Path, column: str, rows: np.ndarray) -> np.ndarray:
    """One value per cell from a .csv/.tsv/.parquet table, an .h5ad's obs, or a .npy vector: the values of the
    cells' ``rows`` in the cell source (one row per cell of the source file)."""
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
    rows = np.asarray(rows)
    if rows.size and len(values) <= rows.max():
        raise AtlasError(f"{path} has {len(values)} values for {len(rows)} cells (they need row {int(rows.max())})")
    return values[rows]


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


PSEUDOTIME_FROM = ("auto", "expression", "embedding")


@dataclass(frozen=True)
class PseudotimeSource:
    """A given pseudotime column, or diffusion pseudotime: of what (``auto``: the expression when the cells are an
    .h5ad, else the embedding), its root rule and the per-cell labels (default: the .h5ad's ``label_column``)."""

    path: Path | None = None
    column: str = "pseudotime"
    root_rule: str = "auto"
    labels_path: Path | None = None
    label_column: str = "cell_type"
    n_neighbors: int = 15
    of: str = "auto"

    def labels(self, cells: CellSource, rows: np.ndarray) -> np.ndarray | None:
        """Per-cell labels from --labels, else from the cells' .h5ad obs when it has the column, else None."""
        if self.labels_path is not None:
            return read_cell_column(self.labels_path, self.label_column, rows)
        if _is_h5ad(cells.path):
            import anndata

            obs = anndata.read_h5ad(cells.path, backed="r").obs
            if self.label_column in obs.columns:
                return obs[self.label_column].astype(str).to_numpy()[rows]
        return None

    def expression(self, cells: CellSource, rows: np.ndarray) -> np.ndarray | None:
        """The cells' log-normalised expression when pseudotime is computed on it, else None."""
        if self.of not in PSEUDOTIME_FROM:
            raise AtlasError(f"pseudotime of {self.of!r} is not one of {', '.join(PSEUDOTIME_FROM)}")
        if self.path is not None or self.of == "embedding" or (self.of == "auto" and not _is_h5ad(cells.path)):
            return None
        if not _is_h5ad(cells.path):
            raise AtlasError(f"pseudotime of the expression needs .h5ad cells, not {cells.path}; "
                             "use --pseudotime-of embedding or give --pseudotime")
        return read_expression(cells.path, rows)


def _is_h5ad(path: Path) -> bool:
    return Path(path).suffix.lower() == ".h5ad"


def run_steering(model_dir: Path, saes_dir: Path, cells: CellSource, out_dir: Path, *,
                 layers: Sequence[int] | None = None, features: Sequence[str] = (),
                 alphas: Sequence[float] = (2.0, 5.0), pseudotime: PseudotimeSource = PseudotimeSource(),
                 groups: str = "tertiles", extreme_fraction: float = 0.2, steer_cells: str = "early",
                 spread: str = "population", active: str = "topk", switch_threshold: float = 0.8,
                 max_features: int = 10, top_genes: int = 20, gene_name_dictionary: Path | None = None,
                 centered: bool = False, batch_size: int = 32, device: str = "auto", run_id: str | None = None,
                 progress: StageProgress | None = None) -> tuple[dict[str, Any], dict[str, pd.DataFrame]]:
    """Steer switch features (or ``features``) at every alpha and write the results directory; the protocol
    (pseudotime, groups, steered cells, spread, active rule, cell choice) is recorded in the Run's thresholds."""
    from atlas.experiments.steering import steer

    refs: list[FeatureRef] = [parse_feature(text) for text in features]
    if not refs and not layers:
        raise AtlasError("give --layers to search for switch features, or --feature LAYER:INDEX")
    cell_set = cells.load()
    steer_layers = sorted({ref.layer for ref in refs} or set(layers or ()))
    model, device_ = _load_model(model_dir, device)
    saes = _load_saes(saes_dir, steer_layers, device_)
    rows = cell_set.rows
    given = None if pseudotime.path is None else read_cell_column(pseudotime.path, pseudotime.column,
                                                                   rows).astype(np.float64)
    labels = pseudotime.labels(cells, rows)
    names = _gene_names(saes_dir, cells.token_dictionary, gene_name_dictionary)
    result = steer(model, saes, cell_set.input_ids, layers=steer_layers, features=refs or None, alphas=alphas,
                   pseudotime=given, expression=pseudotime.expression(cells, rows), root_rule=pseudotime.root_rule,
                   labels=labels, groups=groups, extreme_fraction=extreme_fraction, steer_cells=steer_cells,
                   spread=spread, active=active, switch_threshold=switch_threshold, max_features=max_features,
                   top_genes=top_genes, gene_names=names, batch_size=batch_size, n_neighbors=pseudotime.n_neighbors,
                   centered=centered, device=device_, progress=progress)
    model_name, sae_name = _names(model_dir, saes_dir)
    source = f"column {pseudotime.column} of {pseudotime.path}" if pseudotime.path else \
        f"diffusion pseudotime of the {result.pseudotime_source}, root {pseudotime.root_rule} (cell {result.root})"
    thresholds = {"alphas": result.alphas, "groups": groups, "switch_threshold": switch_threshold,
                  "max_features": max_features, "pseudotime": source, "layers": steer_layers, "centered": centered,
                  "steer_cells": steer_cells, "spread": spread, "active": active, "top_genes": top_genes,
                  "cells": cells.choice()}
    if groups == "extremes":
        thresholds["extreme_fraction"] = extreme_fraction
    run = run_record("steering", model_name, sae_name, cell_set.n_cells, cell_set.digest, thresholds,
                     [str(ref) for ref in refs], run_id)
    group = np.full(cell_set.n_cells, "", dtype=object)
    group[result.extremes.early], group[result.extremes.late] = "early", "late"
    tables = {"results": result.results, "layers": result.layers, "switch": result.switch, "cells": result.cells,
              "pseudotime": pd.DataFrame({"cell": np.arange(cell_set.n_cells), "pseudotime": result.pseudotime,
                                          "group": group, "root": np.arange(cell_set.n_cells) == result.root})}
    save_tables(out_dir, run, tables)
    return run, tables
