// purpose: Mark a shard loaded and drop its ShardLoad mark; runs in the same transaction as its last batch.
// param run: str — the run id
// param mark: str — id of the shard's ShardLoad mark
// param shard: str — shard file name
// param rows: int — edges in the shard (the mark's write offset must have reached it)
// param order: str[] — the run's complete shard files in manifest order (Run.shards keeps this order whichever
//   shard finishes first)
// param checksums: str[] — their checksums, in the same order
// returns: nothing
MATCH (mark:ShardLoad {id: $mark})
WHERE mark.offset = $rows
MATCH (run:Run {id: $run})
// The increment write-locks the Run node first, so the shard list read below is the one a concurrent stream
// committed, not a stale copy (no lost update when two shards finish together).
SET run.edge_count = run.edge_count + $rows
WITH run, mark
WITH run, mark, [i IN range(0, size($order) - 1) WHERE $order[i] = $shard OR $order[i] IN run.shards] AS loaded
SET run.shards = [i IN loaded | $order[i]], run.shard_checksums = [i IN loaded | $checksums[i]]
DELETE mark
