// purpose: Project the AFFECTS edges of a scope into a named GDS graph, one relationship type per downstream layer.
// param graph_name: str — the projection name (made from the runs and layers of the scope)
// param runs: str[] — run ids
// param layers: int[] = null — downstream layers (default all)
// param weighted_undirected: bool = false — undirected, with |d| as the relationship property weight (modules)
// returns: projection — the map gds.graph.project returns (graphName, nodeCount, relationshipCount, ...)
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence). A shard
// key names its run (loaders.schema.shard_key), so the scope's visible keys alone find exactly its edges,
// through the AFFECTS(shard) index, without reading each edge's run. One returned column: the graphdatascience
// client's Cypher projection (gds.graph.project.cypher) reads the projection's map from it.
CALL () { MATCH (run:Run) WHERE run.id IN $runs UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (source:Feature)-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(shard)
WHERE edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
RETURN gds.graph.project($graph_name, source, target,
       {relationshipType: 'L' + toString(target.layer),
        relationshipProperties: CASE WHEN $weighted_undirected THEN {weight: abs(edge.d)} ELSE {} END},
       {undirectedRelationshipTypes: CASE WHEN $weighted_undirected THEN ['*'] ELSE [] END}) AS projection
