// purpose: Mark a shard as being written (offset 0), so a stopped load can find and remove its edges.
// param mark: str — the mark's id (run id and shard file)
// param run: str — the run id
// param shard: str — shard file name
// returns: nothing
MERGE (mark:ShardLoad {id: $mark})
SET mark.run = $run, mark.shard = $shard, mark.offset = 0
