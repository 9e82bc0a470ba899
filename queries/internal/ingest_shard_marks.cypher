// purpose: The shards of a run whose load started and did not finish (their ShardLoad marks).
// param run: str — the run id
// returns: id, shard, offset (rows committed)
MATCH (mark:ShardLoad)
WHERE mark.run = $run
RETURN mark.id AS id, mark.shard AS shard, mark.offset AS offset
ORDER BY shard
