# Neo4j + GDS at the managed server's pinned versions (atlas/db/artifacts.py; compose.yml passes them, a test checks
# they agree). The image's own plugin installer (NEO4J_PLUGINS) would pick whichever GDS it finds newest at start-up.
ARG NEO4J_VERSION
FROM neo4j:${NEO4J_VERSION}-community
ARG GDS_VERSION
# The official GDS plugin jar from Neo4j's GDS download site, baked in at build time (nothing fetched at start);
# a remote ADD is private to root without --chmod, and Neo4j runs as user neo4j.
ADD --chmod=644 https://graphdatascience.ninja/neo4j-graph-data-science-${GDS_VERSION}.jar /plugins/
