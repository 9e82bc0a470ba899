// purpose: Create or update experiment result nodes of a release (Interaction, Steering, experiment Run); idempotent.
// param interactions: list — Interaction property maps (each with id)
// param steering: list — Steering property maps (each with id)
// param runs: list — experiment Run property maps (each with id)
// returns: nothing
CALL () {
  UNWIND $interactions AS row
  MERGE (node:Interaction {id: row.id})
  SET node += row
}
CALL () {
  UNWIND $steering AS row
  MERGE (node:Steering {id: row.id})
  SET node += row
}
CALL () {
  UNWIND $runs AS row
  MERGE (node:Run {id: row.id})
  SET node += row
}
