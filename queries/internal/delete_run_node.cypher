// purpose: Delete a run's Run node and any ShardLoad mark of it once its edges are gone (features stay).
// param run: str — the run id
// returns: deleted
OPTIONAL MATCH (mark:ShardLoad)
WHERE mark.run = $run
DELETE mark
WITH DISTINCT true AS done
OPTIONAL MATCH (run:Run {id: $run})
DETACH DELETE run
RETURN count(run) AS deleted
