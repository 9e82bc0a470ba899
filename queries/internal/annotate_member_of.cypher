// purpose: Link genes to the gene sets (terms) that list them.
// param rows: map[] — {source: gene id, target: term id}
// returns: nothing
UNWIND $rows AS row
MATCH (gene:Gene {id: row.source})
MATCH (term:Term {id: row.target})
MERGE (gene)-[:MEMBER_OF]->(term)
