// purpose: Release a run's load lock if this holder still has it.
// param run: str — the run id
// param holder: str — the holder token the lock was taken with
// returns: released
OPTIONAL MATCH (lock:LoadLock {run: $run})
WHERE lock.holder = $holder
DELETE lock
RETURN count(lock) AS released
