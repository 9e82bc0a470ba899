// purpose: Project the AFFECTS edges of a scope into a named GDS graph, one relationship type per downstream layer.
// param graph_name: str — the projection name (made from the runs and layers of the scope)
// param runs: str[] — run ids
// param layers: int[] = null — downstream layers (default all)
// returns: graph_name, node_count, relationship_count
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence). A shard
// key names its run (loaders.schema.shard_key), so the scope's visible keys alone find exactly its edges,
// through the AFFECTS(shard) index, without reading each edge's run.
CALL () { MATCH (run:Run) WHERE run.id IN $runs UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (source:Feature)-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(shard)
WHERE edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
WITH gds.graph.project($graph_name, source, target, {relationshipType: 'L' + toString(target.layer)}) AS projected
RETURN projected.graphName AS graph_name, projected.nodeCount AS node_count,
       projected.relationshipCount AS relationship_count
