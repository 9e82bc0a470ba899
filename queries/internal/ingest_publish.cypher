// purpose: Make loaded shards visible to readers: its own transaction, committed after every edge of those shards.
// param run: str — the run id
// param keys: int[] — shard keys (loaders.schema.shard_key) of shards whose edges are all committed
// returns: nothing
MATCH (run:Run {id: $run})
SET run.visible = coalesce(run.visible, []) + [key IN $keys WHERE NOT key IN coalesce(run.visible, [])]
