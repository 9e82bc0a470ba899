// purpose: The enrichment terms of some features (for module enrichment).
// param uids: str[] — feature uids
// returns: one row of parallel lists: uid, term, name
UNWIND $uids AS uid
MATCH (feature:Feature {uid: uid})-[:ENRICHED_IN]->(term:Term)
RETURN collect(uid) AS uid, collect(term.id) AS term, collect(coalesce(term.name, term.id)) AS name
