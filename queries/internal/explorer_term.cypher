// purpose: A term (by exact id) with the features enriched in it and how many genes it has.
// param id: str — term id (e.g. GO:0006955)
// param limit: int — at most this many features
// returns: id, name, source, genes, features (list of {uid, layer, label, p_adj})
MATCH (term:Term {id: $id})
RETURN term.id AS id, term.name AS name, term.source AS source, COUNT { (:Gene)-[:MEMBER_OF]->(term) } AS genes,
       COLLECT {
         MATCH (feature:Feature)-[enriched:ENRICHED_IN]->(term)
         WITH feature, enriched ORDER BY enriched.p_adj, feature.uid LIMIT $limit
         RETURN {uid: feature.uid, layer: feature.layer, label: feature.label, p_adj: enriched.p_adj}
       } AS features
