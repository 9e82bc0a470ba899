// purpose: Delete the edges a stopped load of one shard left behind, found by their shard key through the
//   AFFECTS(shard) index, in batches of their own transactions (auto-commit only).
// param key: int — the shard's key (loaders.schema.shard_key)
// param batch: int = 10000 — edges per transaction
// returns: nothing
MATCH ()-[edge:AFFECTS]->()
WHERE edge.shard = $key
CALL (edge) { DELETE edge } IN TRANSACTIONS OF $batch ROWS
