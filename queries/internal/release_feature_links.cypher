// purpose: TOP_GENE and ENRICHED_IN links of the features of some (model, SAE set) pairs, with their properties.
// param pairs: list — [model, sae] pairs
// returns: type, feature, target (gene or term id), properties
MATCH (feature:Feature)-[link:TOP_GENE|ENRICHED_IN]->(target)
WHERE [feature.model, feature.sae] IN $pairs
RETURN type(link) AS type, feature.uid AS feature, target.id AS target, properties(link) AS properties
ORDER BY type, feature, target
