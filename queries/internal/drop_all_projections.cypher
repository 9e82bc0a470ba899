// purpose: Drop every GDS in-memory graph of this database (tests only: analyses drop their own).
// returns: graphName
CALL gds.graph.list() YIELD graphName
CALL gds.graph.drop(graphName, false) YIELD graphName AS dropped
RETURN dropped AS graphName
