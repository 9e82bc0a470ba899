// purpose: Link features to their top genes with rank (1 = strongest) and weight (mean activation on the gene).
// param rows: map[] — {source: feature uid, target: gene id, rank, weight}
// returns: nothing
UNWIND $rows AS row
MATCH (feature:Feature {uid: row.source})
MATCH (gene:Gene {id: row.target})
MERGE (feature)-[top:TOP_GENE]->(gene)
SET top.rank = row.rank, top.weight = row.weight
