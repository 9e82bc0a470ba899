// purpose: GDS memory estimate of projecting a graph of this many features and AFFECTS edges.
// param node_count: int — features
// param relationship_count: int — edges
// returns: bytes_max, required_memory
CALL gds.graph.project.estimate('Feature', 'AFFECTS',
     {nodeCount: $node_count, relationshipCount: $relationship_count})
YIELD bytesMax, requiredMemory
RETURN bytesMax AS bytes_max, requiredMemory AS required_memory
