// purpose: Create one batch of a shard's AFFECTS edges, fenced by the shard's write offset on the Run node.
// param run: str — the run id
// param shard: str — the shard being loaded
// param key: int — the shard's key (loaders.schema.shard_key), stored on every edge for the visibility fence
// param offset: int — rows of the shard written before this batch; a replayed batch finds another offset and
//   writes nothing (a retry after a commit whose answer was lost never duplicates edges)
// param rows: list — [source uid, target uid, d, mean, std, consistency, n, p, q, sign] per edge
// returns: nothing
MATCH (run:Run {id: $run})
WHERE run.loading_shard = $shard AND run.loading_offset = $offset
SET run.loading_offset = $offset + size($rows)
WITH run
UNWIND $rows AS row
MATCH (source:Feature {uid: row[0]})
MATCH (target:Feature {uid: row[1]})
CREATE (source)-[:AFFECTS {run: $run, shard: $key, d: row[2], mean: row[3], std: row[4], consistency: row[5],
                           n: row[6], p: row[7], q: row[8], sign: row[9]}]->(target)
