// purpose: Delete the edges an interrupted load of one shard left behind (one batch of its edge keys).
// param run: str — the run id
// param rows: list — [source uid, target uid] per edge of the shard
// returns: deleted
UNWIND $rows AS row
MATCH (:Feature {uid: row[0]})-[edge:AFFECTS {run: $run}]->(:Feature {uid: row[1]})
DELETE edge
RETURN count(edge) AS deleted
