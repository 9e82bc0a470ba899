// purpose: How many AFFECTS edges an analysis scope holds, and an upper bound on its features, before projecting it.
// param runs: str[] — run ids
// param layers: int[] = null — downstream layers (default all)
// returns: relationships, nodes
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence).
CALL () { MATCH (run:Run) UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH ()-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(run, shard)
WHERE edge.run IN $runs AND edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
WITH count(edge) AS relationships
MATCH (feature:Feature)
RETURN relationships, count(feature) AS nodes
