// purpose: The relationship type of the edges into each feature ('L' + its layer), by internal node id, so that a
//   projection types its edges from a list instead of reading each edge's target node.
// returns: node_id, relationship_type — parallel lists, one entry per feature
MATCH (feature:Feature)
RETURN collect(id(feature)) AS node_id, collect('L' + toString(feature.layer)) AS relationship_type
