// purpose: Create or update Feature nodes from an SAE catalog: activation frequency, annotated flag and label.
// param rows: map[] — {uid, model, sae, layer, index, activation_freq, annotated, label}
// returns: nothing
UNWIND $rows AS row
MERGE (feature:Feature {uid: row.uid})
SET feature.model = row.model, feature.sae = row.sae, feature.layer = row.layer, feature.index = row.index,
    feature.activation_freq = row.activation_freq, feature.annotated = row.annotated, feature.label = row.label
