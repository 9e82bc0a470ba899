// purpose: Set analysis results as properties on features (the `atlas gds --write` and module write-back path).
// param rows: map[] — {uid, properties: {name: value}}; a null value removes the property
// returns: nothing
UNWIND $rows AS row
MATCH (feature:Feature {uid: row.uid})
SET feature += row.properties
