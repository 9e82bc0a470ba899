// purpose: Layer, label and annotation state of some features (nodes of a neighbourhood, hubs of a run).
// param uids: str[] — feature uids
// returns: uid, layer, label, annotated, activation_freq
UNWIND $uids AS uid
MATCH (feature:Feature {uid: uid})
RETURN feature.uid AS uid, feature.layer AS layer, feature.label AS label,
       coalesce(feature.annotated, false) OR EXISTS { (feature)-[:ENRICHED_IN]->(:Term) } AS annotated,
       feature.activation_freq AS activation_freq
