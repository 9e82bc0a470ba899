// purpose: How many AFFECTS edges of one run are in the graph.
// param run: str — the run id
// returns: edges
MATCH ()-[edge:AFFECTS]->()
WHERE edge.run = $run AND edge.shard IS NOT NULL  // every loaded edge has a shard key: the (run, shard) index
RETURN count(edge) AS edges
