// purpose: Create or update Steering nodes (one per feature and alpha) linked to their feature; idempotent.
// param rows: map[] — {id, uid, model, sae, layer, index, run, properties (map: alpha, mean_ds, ...)}
// returns: steerings
UNWIND $rows AS row
MERGE (s:Steering {id: row.id})
SET s += row.properties
MERGE (f:Feature {uid: row.uid})
  ON CREATE SET f.model = row.model, f.sae = row.sae, f.layer = row.layer, f.index = row.index
MERGE (s)-[r:STEERS]->(f)
SET r.run = row.run
RETURN count(s) AS steerings
