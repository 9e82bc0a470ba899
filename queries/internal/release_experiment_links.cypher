// purpose: Experiment links: HAS_MEMBER and INTERACTS_ON of Interaction nodes, STEERS of Steering nodes.
// returns: type, source (interaction or steering id), feature (uid), properties
MATCH (source)-[link:HAS_MEMBER|INTERACTS_ON|STEERS]->(feature:Feature)
RETURN type(link) AS type, source.id AS source, feature.uid AS feature, properties(link) AS properties
ORDER BY type, source, feature
