// purpose: The stream and stats procedures of the installed GDS library (the algorithms `atlas gds` can run).
// returns: name
CALL gds.list() YIELD name
WHERE name ENDS WITH '.stream' OR name ENDS WITH '.stats'
RETURN name ORDER BY name
