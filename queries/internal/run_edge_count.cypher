// purpose: How many AFFECTS edges of one run are in the graph.
// param keys: int[] — the shard keys of every shard the run's loads began (loaders.online.run_shard_keys), which
//   find its edges through the AFFECTS(shard) index
// returns: edges
MATCH ()-[edge:AFFECTS]->()
WHERE edge.shard IN $keys
RETURN count(edge) AS edges
