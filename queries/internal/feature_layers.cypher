// purpose: The layer of each feature by internal node id, so that a Cypher projection gives its features their
//   layer from a list instead of reading each edge's source and target node.
// returns: node_id, layer — parallel lists, one entry per feature
MATCH (feature:Feature)
RETURN collect(id(feature)) AS node_id, collect(feature.layer) AS layer
