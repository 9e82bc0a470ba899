"""Neo4j: the managed local server, the artifacts it is built from, and connections to any Neo4j 5."""
