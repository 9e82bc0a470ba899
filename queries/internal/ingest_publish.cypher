// purpose: Make loaded shards visible to readers: its own transaction, committed after every edge of those shards.
// param run: str — the run id
// param keys: int[] — shard keys (loaders.schema.shard_key) of shards whose edges are all committed
// param order: int[] — the keys of the run's complete shards in manifest order (visible keeps this order whichever
//   shard is published first, so every load of a run leaves the same Run node)
// returns: nothing
MATCH (run:Run {id: $run})
// The right-hand side reads run.visible, so Cypher write-locks the Run node before reading it: two streams
// publishing at once cannot lose each other's key.
SET run.visible = [key IN $order WHERE key IN $keys OR key IN coalesce(run.visible, [])]
