// purpose: Delete every AFFECTS edge of one run, in batches of their own transactions (auto-commit only).
// param keys: int[] — the shard keys of every shard the run's loads began (loaders.online.run_shard_keys), which
//   find its edges through the AFFECTS(shard) index
// param batch: int = 10000 — edges per transaction
// returns: nothing
MATCH ()-[edge:AFFECTS]->()
WHERE edge.shard IN $keys
CALL (edge) { DELETE edge } IN TRANSACTIONS OF $batch ROWS
