// purpose: Take a run's load lock, or find who holds it: MERGE on the unique run id lets exactly one writer create it.
// param run: str — the run id
// param holder: str — a random token of this writer
// param host: str — this machine's host name
// param pid: int — this process's id
// param operation: str — what the writer does ('ingest' or 'delete')
// returns: lock
MERGE (lock:LoadLock {run: $run})
ON CREATE SET lock.holder = $holder, lock.host = $host, lock.pid = $pid, lock.operation = $operation,
              lock.since = toString(datetime.truncate('second', datetime()))
RETURN properties(lock) AS lock
