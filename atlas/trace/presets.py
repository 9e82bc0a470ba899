"""Named trace configurations."""

from __future__ import annotations

from dataclasses import dataclass

from atlas.errors import AtlasError


@dataclass(frozen=True)
class Preset:
    """Source layer, downstream layers (None: every later layer with an SAE) and cells per run."""

    source_layer: int | None
    downstream_layers: tuple[int, ...] | None
    n_cells: int | None
    description: str


PRESETS = {
    # The reference study's run: all 4,065 active L5 features into L6, L11, L17 over 20 cells, its thresholds.
    "paper-l5": Preset(5, (6, 11, 17), 20, "the reference study: L5 -> {6, 11, 17}, 20 cells"),
    "full-depth": Preset(None, None, None, "every downstream layer that has an SAE"),
}


def resolve_layers(preset: str, source_layer: int | None, downstream: list[int] | None, sae_layers: list[int]
                   ) -> tuple[int, list[int]]:
    """Source and downstream layers from a preset, overridden by explicit options."""
    if preset not in PRESETS:
        raise AtlasError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    chosen = PRESETS[preset]
    source = source_layer if source_layer is not None else chosen.source_layer
    if source is None:
        raise AtlasError(f"preset {preset} needs --source-layer")
    layers = downstream or (list(chosen.downstream_layers) if chosen.downstream_layers and source_layer in (
        None, chosen.source_layer) else [layer for layer in sae_layers if layer > source])
    if not layers:
        raise AtlasError(f"no SAE after source layer {source} (SAE layers: {sae_layers})")
    return source, sorted(layers)
