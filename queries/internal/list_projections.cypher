// purpose: The names of the GDS projections that exist now.
// returns: graph_name
CALL gds.graph.list() YIELD graphName RETURN graphName AS graph_name ORDER BY graph_name
