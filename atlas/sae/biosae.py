"""Adapter for the public SAE atlas directory layout (the bio-sae project), read and written.

::

    <root>/layer05_x4_k32/sae_final.pt            {"model_state_dict", "d_model", "n_features", "k"}
    <root>/layer05_x4_k32/activation_mean.npy     (d_model,) float32
    <root>/layer05_x4_k32/feature_catalog.json    see atlas.catalog
    <root>/layer05_x4_k32/feature_annotations.json

The checkpoint's state dict holds two ``nn.Linear`` modules: ``W_enc`` (``weight`` (n_features, d_model),
``bias``) and ``W_dec`` (``weight`` (d_model, n_features), ``bias``). Checkpoints are read with
``torch.load(weights_only=True)``: tensors and plain containers only, never arbitrary pickled code.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from atlas.catalog import LAYER_DIR
from atlas.errors import AtlasError
from atlas.files import write_atomically
from atlas.sae.topk import TopKSAE

CHECKPOINT = "sae_final.pt"
ACTIVATION_MEAN = "activation_mean.npy"


def layer_dir_name(layer: int, expansion: int, k: int) -> str:
    """``layer05_x4_k32`` for layer 5, 4x expansion, k=32."""
    return f"layer{layer:02d}_x{expansion}_k{k}"


def find_layer_dirs(root: str | Path) -> dict[int, Path]:
    """Map layer -> SAE directory under ``root``; two SAEs for one layer are ambiguous and refused."""
    root = Path(root)
    if not root.is_dir():
        raise AtlasError(f"{root}: SAE directory not found")
    found: dict[int, Path] = {}
    for child in sorted(root.iterdir()):
        match = LAYER_DIR.match(child.name)
        if not (match and child.is_dir() and (child / CHECKPOINT).is_file()):
            continue
        layer = int(match.group(1))
        if layer in found:
            raise AtlasError(f"{root}: two SAEs for layer {layer} ({found[layer].name}, {child.name})")
        found[layer] = child
    if not found:
        raise AtlasError(f"{root}: no layer{{NN}}_x{{E}}_k{{K}}/{CHECKPOINT} directories")
    return found


def load_sae(layer_dir: str | Path, device: torch.device | str = "cpu") -> TopKSAE:
    """Load one layer's TopK SAE and activation mean, checking every shape."""
    layer_dir = Path(layer_dir)
    path = layer_dir / CHECKPOINT
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as error:
        raise AtlasError(f"{path}: not found") from error
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
        # torch's message spans many lines (and suggests weights_only=False); keep the line that names the cause.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = next((line for line in lines if "GLOBAL" in line), lines[0] if lines else type(error).__name__)
        raise AtlasError(f"{path}: not a loadable weights-only SAE checkpoint ({reason})") from error
    try:
        d_model, n_features, k = int(checkpoint["d_model"]), int(checkpoint["n_features"]), int(checkpoint["k"])
        state = checkpoint["model_state_dict"]
        tensors = {name: state[name] for name in ("W_enc.weight", "W_enc.bias", "W_dec.weight", "W_dec.bias")}
    except (KeyError, TypeError, ValueError) as error:
        raise AtlasError(f"{path}: missing {error} (need model_state_dict, d_model, n_features, k)") from error
    expected = {"W_enc.weight": (n_features, d_model), "W_enc.bias": (n_features,),
                "W_dec.weight": (d_model, n_features), "W_dec.bias": (d_model,)}
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise AtlasError(f"{path}: {name} has shape {tuple(tensors[name].shape)}, expected {shape}")
    mean_path = layer_dir / ACTIVATION_MEAN
    if not mean_path.is_file():
        raise AtlasError(f"{mean_path}: not found (the SAE input is centred by this mean)")
    try:
        mean = np.load(mean_path, allow_pickle=False)
    except ValueError as error:
        raise AtlasError(f"{mean_path}: not a plain numeric .npy file ({error})") from error
    if mean.shape != (d_model,):
        raise AtlasError(f"{mean_path}: shape {mean.shape}, expected ({d_model},)")
    sae = TopKSAE(d_model, n_features, k, torch.from_numpy(mean.astype(np.float32)))
    with torch.no_grad():
        sae.encoder_weight.copy_(tensors["W_enc.weight"])
        sae.encoder_bias.copy_(tensors["W_enc.bias"])
        sae.decoder_weight.copy_(tensors["W_dec.weight"].T)
        sae.decoder_bias.copy_(tensors["W_dec.bias"])
    return sae.to(device).eval()


def load_sae_set(root: str | Path, layers: list[int] | None = None, device: torch.device | str = "cpu"
                 ) -> dict[int, TopKSAE]:
    """Load the SAEs of ``layers`` (default: every layer present); a missing layer is a user error."""
    available = find_layer_dirs(root)
    wanted = sorted(available) if layers is None else sorted(set(layers))
    missing = [layer for layer in wanted if layer not in available]
    if missing:
        raise AtlasError(f"{root}: no SAE for layer(s) {missing} (available: {sorted(available)})")
    return {layer: load_sae(available[layer], device) for layer in wanted}


def write_sae(root: str | Path, layer: int, sae: TopKSAE) -> Path:
    """Write ``sae`` in the atlas layout under ``root``; returns the layer directory."""
    expansion = max(1, sae.n_features // sae.d_model)
    layer_dir = Path(root) / layer_dir_name(layer, expansion, sae.k)
    layer_dir.mkdir(parents=True, exist_ok=True)
    state = {
        "W_enc.weight": sae.encoder_weight.detach().cpu().float().clone(),
        "W_enc.bias": sae.encoder_bias.detach().cpu().float().clone(),
        "W_dec.weight": sae.decoder_weight.detach().cpu().float().T.contiguous(),
        "W_dec.bias": sae.decoder_bias.detach().cpu().float().clone(),
    }
    checkpoint = {"model_state_dict": state, "d_model": sae.d_model, "n_features": sae.n_features, "k": sae.k}
    write_atomically(layer_dir / CHECKPOINT, lambda handle: torch.save(checkpoint, handle))
    mean = sae.activation_mean.detach().cpu().numpy().astype(np.float32)
    write_atomically(layer_dir / ACTIVATION_MEAN, lambda handle: np.save(handle, mean, allow_pickle=False))
    return layer_dir
