// purpose: Set a Run node's load status once no shard is being written ('loading', 'loaded' or 'partial').
// param run: str — the run id
// param status: str — loading | loaded | partial
// returns: nothing
MATCH (run:Run {id: $run})
SET run.status = $status
