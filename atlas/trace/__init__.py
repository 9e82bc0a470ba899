"""Circuit tracing: ablate source-layer SAE features and measure every downstream feature's change.

``setup`` (model + SAEs + layers), ``engine`` (the batched engine), ``reference`` (the literal naive design, for
equivalence tests and benchmarks), ``stats`` (Welford, Chan merge, d, consistency, p, BH q), ``features``
(source-feature selection), ``plan`` and ``run`` (shard plan, resumable workers, merge, finalisation), ``deltas``
(per-cell deltas kept on request) and ``calibrate`` (their sign-flip permutation null).
"""
