// purpose: Delete every AFFECTS edge of one run, in batches of their own transactions (auto-commit only).
// param run: str — the run id
// param batch: int = 10000 — edges per transaction
// returns: nothing
MATCH ()-[edge:AFFECTS {run: $run}]->()
CALL (edge) { DELETE edge } IN TRANSACTIONS OF $batch ROWS
