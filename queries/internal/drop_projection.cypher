// purpose: Drop one named GDS projection (no error when it does not exist).
// param graph_name: str — the projection name
// returns: graph_name
CALL gds.graph.drop($graph_name, false) YIELD graphName
RETURN graphName AS graph_name
