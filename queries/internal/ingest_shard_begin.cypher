// purpose: Record which shard a load is about to write (offset 0), so a stopped load can find and remove its edges.
// param run: str — the run id
// param shard: str — shard file name
// param sha256: str — shard checksum from the manifest
// returns: nothing
MATCH (run:Run {id: $run})
SET run.loading_shard = $shard, run.loading_sha256 = $sha256, run.loading_offset = 0
