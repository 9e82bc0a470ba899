// purpose: The relationship types of a projection (one per downstream layer, e.g. L6).
// param graph_name: str — the projection name
// returns: types
CALL gds.graph.list($graph_name) YIELD schemaWithOrientation
RETURN keys(schemaWithOrientation.relationships) AS types
