// purpose: Delete a run's Run node once its edges are gone (features and annotations stay).
// param run: str — the run id
// returns: deleted
OPTIONAL MATCH (run:Run {id: $run})
DETACH DELETE run
RETURN count(run) AS deleted
