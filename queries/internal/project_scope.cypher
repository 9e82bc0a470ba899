// purpose: Project the AFFECTS edges of a scope into a named GDS graph: features with their layer, edges of one type.
// param graph_name: str — the projection name (made from the runs and layers of the scope)
// param runs: str[] — run ids
// param layers: int[] = null — downstream layers (default all)
// param weighted_undirected: bool = false — undirected, with |d| as the relationship property weight (modules)
// param max_q: float = null — only edges whose q_column is at most this (default every edge)
// param q_column: str = q — q (BH of the t-test p) or perm_q (BH of the permutation p, `atlas trace calibrate`)
// param layers_by_node_id: list — the layer of each feature by its internal node id (feature_layers)
// returns: projection — the map gds.graph.project returns (graphName, nodeCount, relationshipCount, ...)
// Counts only edges of shards their Run lists as visible (loaders/online.py: the shard visibility fence). A shard
// key names its run (loaders.schema.shard_key), so the scope's visible keys alone find exactly its edges,
// through the AFFECTS(shard) index, without reading each edge's run. The layers come from the list read just
// before (a Feature is never deleted but by a wipe, so its id keeps naming it), which is cheaper than reading
// each edge's source and target node (benchmarks/README.md); a feature created since is not in the list and falls
// back to its property. The form is the native projection's (atlas/analysis/projection.py): label Feature with
// property layer, relationship type AFFECTS. One returned column: the graphdatascience client's Cypher projection
// (gds.graph.project.cypher) reads the projection's map from it.
CALL () { MATCH (run:Run) WHERE run.id IN $runs UNWIND run.visible AS key RETURN collect(key) AS visible }
MATCH (source:Feature)-[edge:AFFECTS]->(target:Feature)
USING INDEX edge:AFFECTS(shard)
WHERE edge.shard IN visible AND ($layers IS NULL OR target.layer IN $layers)
  AND ($max_q IS NULL OR CASE $q_column WHEN 'perm_q' THEN edge.perm_q ELSE edge.q END <= $max_q)
RETURN gds.graph.project($graph_name, source, target,
       {sourceNodeLabels: 'Feature', targetNodeLabels: 'Feature',
        sourceNodeProperties: {layer: coalesce($layers_by_node_id[id(source)], source.layer)},
        targetNodeProperties: {layer: coalesce($layers_by_node_id[id(target)], target.layer)},
        relationshipType: 'AFFECTS',
        relationshipProperties: CASE WHEN $weighted_undirected THEN {weight: abs(edge.d)} ELSE {} END},
       {undirectedRelationshipTypes: CASE WHEN $weighted_undirected THEN ['*'] ELSE [] END}) AS projection
