// purpose: The Run node of a run as the loaders left it (null when the run is not in the graph).
// param run: str — the run id
// returns: run (a map of the Run node's properties, or null)
OPTIONAL MATCH (run:Run {id: $run})
RETURN properties(run) AS run
