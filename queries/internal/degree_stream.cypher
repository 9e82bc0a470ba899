// purpose: Degree of every projected feature in one orientation, over some relationship types (downstream layers).
// param graph_name: str — the projection name
// param orientation: str — NATURAL (out-degree) or REVERSE (in-degree)
// param relationship_types: str[] — projected types, e.g. ['L6'], or ['*'] for all
// returns: uid, layer, degree
CALL gds.degree.stream($graph_name, {orientation: $orientation, relationshipTypes: $relationship_types})
YIELD nodeId, score
WITH gds.util.asNode(nodeId) AS feature, score
RETURN feature.uid AS uid, feature.layer AS layer, toInteger(score) AS degree
