// purpose: Wait until every index is online (after creating one).
// returns: nothing
CALL db.awaitIndexes(300)
