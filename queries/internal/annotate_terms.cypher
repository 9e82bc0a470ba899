// purpose: Create or update Term nodes (id source:name); a description is kept when a later source has none.
// param rows: map[] — {id, name, source, description}
// returns: nothing
UNWIND $rows AS row
MERGE (term:Term {id: row.id})
SET term.name = row.name, term.source = row.source, term.description = coalesce(row.description, term.description)
