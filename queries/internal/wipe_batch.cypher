// purpose: Delete every node and relationship of the database in batches (tests and `atlas db` maintenance).
// returns: nothing
MATCH (n)
CALL { WITH n DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS
