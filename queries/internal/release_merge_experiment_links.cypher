// purpose: Link experiment result nodes of a release to their features (which the release's features table made).
// param members: list — {source: interaction id, feature: uid, properties: map}
// param targets: list — {source: interaction id, feature: uid, properties: map}
// param steers: list — {source: steering id, feature: uid, properties: map}
// returns: nothing
CALL () {
  UNWIND $members AS row
  MATCH (source:Interaction {id: row.source}), (feature:Feature {uid: row.feature})
  MERGE (source)-[link:HAS_MEMBER]->(feature)
  SET link += row.properties
}
CALL () {
  UNWIND $targets AS row
  MATCH (source:Interaction {id: row.source}), (feature:Feature {uid: row.feature})
  MERGE (source)-[link:INTERACTS_ON]->(feature)
  SET link += row.properties
}
CALL () {
  UNWIND $steers AS row
  MATCH (source:Steering {id: row.source}), (feature:Feature {uid: row.feature})
  MERGE (source)-[link:STEERS]->(feature)
  SET link += row.properties
}
