// purpose: Create Gene nodes by id (upper-cased symbol or Ensembl id); an existing gene keeps its symbol.
// param rows: map[] — {id, symbol}
// returns: nothing
UNWIND $rows AS row
MERGE (gene:Gene {id: row.id})
ON CREATE SET gene.symbol = row.symbol
