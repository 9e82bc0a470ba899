// purpose: Link features to the terms their top genes are enriched in (adjusted p, odds ratio, overlap).
// param rows: map[] — {source: feature uid, target: term id, p_adj, odds_ratio, n_overlap}
// returns: nothing
UNWIND $rows AS row
MATCH (feature:Feature {uid: row.source})
MATCH (term:Term {id: row.target})
MERGE (feature)-[enriched:ENRICHED_IN]->(term)
SET enriched.p_adj = row.p_adj, enriched.odds_ratio = row.odds_ratio, enriched.n_overlap = row.n_overlap
