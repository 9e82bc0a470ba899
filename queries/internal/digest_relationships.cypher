// purpose: Every relationship with its type, its endpoints' keys and its properties (to fingerprint the graph).
// returns: type, source, target, properties
MATCH (source)-[relationship]->(target)
RETURN type(relationship) AS type, coalesce(source.uid, source.id) AS source,
       coalesce(target.uid, target.id) AS target, properties(relationship) AS properties
