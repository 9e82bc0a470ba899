// purpose: Degree of every projected feature (by GDS node id) in one orientation, over some relationship types.
// param graph_name: str — the projection name
// param orientation: str — NATURAL (out-degree) or REVERSE (in-degree)
// param relationship_types: str[] — projected types, e.g. ['L6'], or ['*'] for all
// returns: one row of parallel lists: node_id, degree
CALL gds.degree.stream($graph_name, {orientation: $orientation, relationshipTypes: $relationship_types})
YIELD nodeId, score
RETURN collect(nodeId) AS node_id, collect(toInteger(score)) AS degree
