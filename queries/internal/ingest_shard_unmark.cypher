// purpose: Drop a shard's ShardLoad mark once the edges of its stopped load are deleted.
// param mark: str — the mark's id
// returns: nothing
MATCH (mark:ShardLoad {id: $mark})
DELETE mark
