// purpose: How many AFFECTS edges an analysis scope holds, and an upper bound on its features, before projecting it.
// param runs: str[] — run ids
// param layers: int[] = null — downstream layers (default all)
// returns: relationships, nodes
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence). A shard
// key names its run (loaders.schema.shard_key), so the scope's visible keys alone find exactly its edges,
// through the AFFECTS(shard) index, without reading each edge's run.
CALL () { MATCH (run:Run) WHERE run.id IN $runs UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH ()-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(shard)
WHERE edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
WITH count(edge) AS relationships
MATCH (feature:Feature)
RETURN relationships, count(feature) AS nodes
