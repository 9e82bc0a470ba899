// purpose: How many AFFECTS edges of one run are in the graph.
// param run: str — the run id
// returns: edges
MATCH ()-[edge:AFFECTS {run: $run}]->()
RETURN count(edge) AS edges
