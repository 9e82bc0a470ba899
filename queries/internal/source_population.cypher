// purpose: The traced population of a scope: features at the runs' source layers (same model and SAE) that are active.
// param runs: str[] — run ids
// param min_activation_freq: float — lowest activation frequency counted as active
// returns: uid, label, annotated, activation_freq
MATCH (run:Run) WHERE run.id IN $runs
MATCH (feature:Feature {layer: run.source_layer})
WHERE (run.model IS NULL OR feature.model = run.model) AND (run.sae IS NULL OR feature.sae = run.sae)
  AND coalesce(feature.activation_freq, 0.0) >= $min_activation_freq
WITH DISTINCT feature
RETURN feature.uid AS uid, feature.label AS label,
       coalesce(feature.annotated, false) OR EXISTS { (feature)-[:ENRICHED_IN]->(:Term) } AS annotated,
       feature.activation_freq AS activation_freq
