// purpose: GDS memory estimate of projecting a scope as project_scope does: this many features, and its AFFECTS edges spread evenly over one relationship type per downstream layer (directed, or undirected with a weight).
// param node_count: int — features
// param relationship_count: int — edges per relationship type
// param relationship_projection: map — relationship type (L6, ...) -> {type: 'AFFECTS', orientation, properties}
// returns: bytes_max, required_memory
CALL gds.graph.project.estimate('Feature', $relationship_projection,
     {nodeCount: $node_count, relationshipCount: $relationship_count})
YIELD bytesMax, requiredMemory
RETURN bytesMax AS bytes_max, requiredMemory AS required_memory
