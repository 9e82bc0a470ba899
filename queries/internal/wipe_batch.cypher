// purpose: Delete every relationship, then every node, of the database in batches (tests and maintenance).
// returns: nothing
// Relationships go first: detach-deleting a dense node in one transaction would hold all its edges at once.
MATCH ()-[r]->()
CALL { WITH r DELETE r } IN TRANSACTIONS OF 20000 ROWS
WITH count(*) AS relationships
MATCH (n)
CALL { WITH n DELETE n } IN TRANSACTIONS OF 20000 ROWS
