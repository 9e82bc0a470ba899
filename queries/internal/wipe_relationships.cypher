// purpose: Delete every relationship of the database in batches, so that wiping dense nodes stays small.
// returns: nothing
MATCH ()-[r]->()
CALL (r) { DELETE r } IN TRANSACTIONS OF 20000 ROWS
