// purpose: Create or update the Run node of an experiment (combinatorial ablation or steering); idempotent.
// param run: str — the run id
// param properties: map — kind, model, sae, n_cells, thresholds (JSON text), created_at, status
// returns: id
MERGE (r:Run {id: $run})
SET r += $properties
RETURN r.id AS id
