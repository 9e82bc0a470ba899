// purpose: GDS memory estimate of projecting a scope as projected() does: this many features, and its AFFECTS edges as one relationship type (directed, or undirected with a weight).
// param node_count: int — features
// param relationship_count: int — edges
// param relationship_projection: map — AFFECTS -> {type: 'AFFECTS', orientation, properties}
// returns: bytes_max, required_memory
CALL gds.graph.project.estimate('Feature', $relationship_projection,
     {nodeCount: $node_count, relationshipCount: $relationship_count})
YIELD bytesMax, requiredMemory
RETURN bytesMax AS bytes_max, requiredMemory AS required_memory
