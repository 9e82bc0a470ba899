// purpose: Delete every AFFECTS edge of one run, in batches of their own transactions (auto-commit only).
// param run: str — the run id
// param batch: int = 10000 — edges per transaction
// returns: nothing
MATCH ()-[edge:AFFECTS]->()
WHERE edge.run = $run AND edge.shard IS NOT NULL  // every loaded edge has a shard key: the (run, shard) index
CALL (edge) { DELETE edge } IN TRANSACTIONS OF $batch ROWS
