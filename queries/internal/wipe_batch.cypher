// purpose: Delete every node and relationship of the database in batches (tests and maintenance).
// returns: nothing
// Relationships go first (see wipe_relationships): detach-deleting a dense node deletes all its edges in one batch.
MATCH (n)
CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 20000 ROWS
