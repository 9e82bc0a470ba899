"""Experiments beyond edge tracing: combinatorial ablation of feature sets and trajectory steering."""
