"""The demo: a small Geneformer-shaped model trained on real PBMCs, then the whole atlas pipeline on it."""
