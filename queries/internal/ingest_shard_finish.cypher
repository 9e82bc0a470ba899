// purpose: Mark a shard loaded; runs in the same transaction as the shard's last batch of edges.
// param run: str — the run id
// param shard: str — shard file name
// param sha256: str — shard checksum
// param rows: int — edges in the shard (the write offset must have reached it)
// returns: nothing
MATCH (run:Run {id: $run})
WHERE run.loading_shard = $shard AND run.loading_offset = $rows
SET run.shards = run.shards + $shard, run.shard_checksums = run.shard_checksums + $sha256,
    run.edge_count = run.edge_count + $rows
REMOVE run.loading_shard, run.loading_sha256, run.loading_offset
