// purpose: The visible shard keys of some runs or of every run (the shard visibility fence a request reads once).
// param runs: str[] = null — run ids (default every run)
// returns: run, visible
MATCH (run:Run) WHERE $runs IS NULL OR run.id IN $runs
RETURN run.id AS run, coalesce(run.visible, []) AS visible
ORDER BY run
