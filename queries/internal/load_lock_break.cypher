// purpose: Remove a run's load lock whoever holds it (`atlas ingest --unlock`, when its process is known to be gone).
// param run: str — the run id
// returns: released
OPTIONAL MATCH (lock:LoadLock {run: $run})
DELETE lock
RETURN count(lock) AS released
