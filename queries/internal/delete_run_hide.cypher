// purpose: First step of deleting a run: hide all its edges from readers and mark it 'deleting' (one transaction).
// param run: str — the run id
// returns: nothing
MATCH (run:Run {id: $run})
SET run.visible = [], run.status = 'deleting'
