// purpose: Experiment runs (ablation or steering) on the same model and SAE set as the given trace runs.
// param runs: str[] — the trace runs of the scope
// param kind: str — ablation or steering
// returns: run
MATCH (t:Run) WHERE t.id IN $runs
WITH collect(DISTINCT [t.model, t.sae]) AS keys
MATCH (r:Run {kind: $kind})
WHERE [r.model, r.sae] IN keys
RETURN r.id AS run
ORDER BY run
