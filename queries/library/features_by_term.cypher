// purpose: Features enriched in a term, matched by exact id or by a case-insensitive part of its name.
// param term: str — term id (e.g. GO:0006955) or part of its name (e.g. immune)
// param limit: int = 50 — how many features
// returns: uid, layer, label, term, term_name, source, p_adj
MATCH (term:Term) WHERE term.id = $term OR toLower(term.name) CONTAINS toLower($term)
MATCH (feature:Feature)-[enriched:ENRICHED_IN]->(term)
RETURN feature.uid AS uid, feature.layer AS layer, feature.label AS label, term.id AS term, term.name AS term_name,
       term.source AS source, enriched.p_adj AS p_adj
ORDER BY p_adj, uid
LIMIT $limit
