// purpose: Every Term node with all its properties, by id.
// returns: properties
MATCH (term:Term)
RETURN properties(term) AS properties
ORDER BY term.id
