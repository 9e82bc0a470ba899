// purpose: Annotation state, label and activation frequency of some features.
// param uids: str[] — feature uids
// returns: rows — one list [uid, label, annotated, terms, activation_freq] per feature (nulls kept, one record)
UNWIND $uids AS uid
MATCH (feature:Feature {uid: uid})
WITH feature, COUNT { (feature)-[:ENRICHED_IN]->(:Term) } AS terms
RETURN collect([feature.uid, feature.label, coalesce(feature.annotated, false) OR terms > 0, terms,
                feature.activation_freq]) AS rows
