// purpose: Link Interaction nodes to the target features they change, with the per-target statistics; idempotent.
// param rows: map[] — {interaction, uid, model, sae, layer, index, properties (map: run, full_d, redundancy, ...)}
// returns: links
UNWIND $rows AS row
MATCH (i:Interaction {id: row.interaction})
MERGE (f:Feature {uid: row.uid})
  ON CREATE SET f.model = row.model, f.sae = row.sae, f.layer = row.layer, f.index = row.index
MERGE (i)-[t:INTERACTS_ON]->(f)
SET t += row.properties
RETURN count(t) AS links
