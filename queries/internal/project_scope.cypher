// purpose: Project the AFFECTS edges of a scope into a named GDS graph, one relationship type per downstream layer.
// param graph_name: str — the projection name (made from the runs and layers of the scope)
// param runs: str[] — run ids
// param layers: int[] = null — downstream layers (default all)
// returns: graph_name, node_count, relationship_count
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence).
CALL () { MATCH (run:Run) UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (source:Feature)-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(run, shard)
WHERE edge.run IN $runs AND edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
WITH gds.graph.project($graph_name, source, target, {relationshipType: 'L' + toString(target.layer)}) AS projected
RETURN projected.graphName AS graph_name, projected.nodeCount AS node_count,
       projected.relationshipCount AS relationship_count
