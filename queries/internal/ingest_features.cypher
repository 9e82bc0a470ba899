// purpose: Create the Feature nodes a batch of edges or a catalog needs; existing features keep their properties.
// param features: map[] — {uid, model, sae, layer, index}
// returns: nothing
UNWIND $features AS row
MERGE (feature:Feature {uid: row.uid})
ON CREATE SET feature.model = row.model, feature.sae = row.sae, feature.layer = row.layer, feature.index = row.index
