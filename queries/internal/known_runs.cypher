// purpose: Every run id in the graph (for error messages that list the choices).
// returns: id
MATCH (run:Run) RETURN run.id AS id ORDER BY id
