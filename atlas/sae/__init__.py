"""Sparse autoencoders: a small interface (``base``), architectures (``topk``) and on-disk formats (``biosae``)."""

from atlas.sae.base import SparseAutoencoder
from atlas.sae.topk import TopKSAE

__all__ = ["SparseAutoencoder", "TopKSAE"]
