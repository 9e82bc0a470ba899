// purpose: Create or update Interaction nodes (one per ablated feature set) with their member features; idempotent.
// param rows: map[] — {id, properties (map), members: [{uid, model, sae, layer, index, position}]}
// returns: interactions
UNWIND $rows AS row
MERGE (i:Interaction {id: row.id})
SET i += row.properties
WITH i, row
OPTIONAL MATCH (i)-[old:HAS_MEMBER|INTERACTS_ON]->()
DELETE old
WITH DISTINCT i, row
UNWIND row.members AS member
MERGE (f:Feature {uid: member.uid})
  ON CREATE SET f.model = member.model, f.sae = member.sae, f.layer = member.layer, f.index = member.index
MERGE (i)-[m:HAS_MEMBER]->(f)
SET m.position = member.position
RETURN count(DISTINCT i) AS interactions
