// purpose: Features with their catalog properties, optionally only those of some layers (the layers of a scope).
// param layers: int[] = null — feature layers (default all)
// returns: rows — one list [uid, model, sae, layer, index, activation_freq, annotated, label] per feature
//          (nulls kept, one record)
MATCH (feature:Feature) WHERE $layers IS NULL OR feature.layer IN $layers
RETURN collect([feature.uid, feature.model, feature.sae, feature.layer, feature.index, feature.activation_freq,
                coalesce(feature.annotated, false), feature.label]) AS rows
