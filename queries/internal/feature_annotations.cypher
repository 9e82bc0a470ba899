// purpose: Annotation state, label and activation frequency of some features.
// param uids: str[] — feature uids
// returns: uid, label, annotated, terms, activation_freq
UNWIND $uids AS uid
MATCH (feature:Feature {uid: uid})
WITH feature, COUNT { (feature)-[:ENRICHED_IN]->(:Term) } AS terms
RETURN feature.uid AS uid, feature.label AS label, coalesce(feature.annotated, false) OR terms > 0 AS annotated,
       terms, feature.activation_freq AS activation_freq
