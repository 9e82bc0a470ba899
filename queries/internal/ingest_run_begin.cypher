// purpose: Create or update a Run node from its manifest before its shards load; status becomes 'loading'.
// param run: str — the run id
// param properties: map — Run properties from the manifest (loaders.runs.run_properties)
// returns: nothing
MERGE (run:Run {id: $run})
ON CREATE SET run.shards = [], run.shard_checksums = [], run.edge_count = 0, run.visible = []
SET run += $properties, run.status = 'loading'
