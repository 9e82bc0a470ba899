"""The foundation model: a Hugging Face ``BertForMaskedLM`` directory (e.g. Geneformer), loaded from disk only."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from transformers import BertConfig, BertForMaskedLM

from atlas.errors import AtlasError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is not available is a user error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise AtlasError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AtlasError(f"device {name!r} requested but CUDA is not available")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise AtlasError(f"device {name!r} requested but MPS is not available")
    return device


def resolve_dtype(name: str) -> torch.dtype:
    """Map ``fp32``/``bf16``/``fp16`` to a torch dtype."""
    if name not in DTYPES:
        raise AtlasError(f"unknown precision {name!r} (use {', '.join(DTYPES)})")
    return DTYPES[name]


def load_model(path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
               ) -> BertForMaskedLM:
    """Load a ``BertForMaskedLM`` directory with ``local_files_only`` (never the hub), in eval mode.

    Attention is PyTorch's scaled-dot-product attention, which never materialises the (heads, T, T) score matrix:
    at Geneformer's 4,096 tokens that matrix alone is 1.2 GB per ablated variant in fp32.
    """
    path = Path(path)
    if not (path / "config.json").is_file():
        raise AtlasError(f"{path}: not a Hugging Face model directory (no config.json)")
    try:
        config = BertConfig.from_pretrained(path, local_files_only=True)
        model = BertForMaskedLM.from_pretrained(path, config=config, local_files_only=True, dtype=dtype,
                                                attn_implementation="sdpa")
    except (OSError, ValueError) as error:
        raise AtlasError(f"{path}: cannot load a BertForMaskedLM ({error})") from error
    return model.to(device).eval()


def encoder_layers(model: BertForMaskedLM) -> nn.ModuleList:
    """The transformer blocks in order; block ``i`` produces the hidden state of layer ``i``."""
    return model.bert.encoder.layer


def d_model(model: BertForMaskedLM) -> int:
    """Width of the residual stream."""
    return int(model.config.hidden_size)


def n_layers(model: BertForMaskedLM) -> int:
    """Number of transformer blocks."""
    return int(model.config.num_hidden_layers)


def vocab_size(model: BertForMaskedLM) -> int:
    """Number of token ids the embedding accepts."""
    return int(model.config.vocab_size)


def model_name(path: str | Path) -> str:
    """A short, stable name for a model directory (its folder name)."""
    return Path(path).resolve().name
