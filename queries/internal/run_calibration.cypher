// purpose: The calibration summaries (`atlas trace calibrate`, stored as JSON text) of an analysis scope's runs.
// param runs: str[] — run ids
// returns: run, calibration (null when the run is not calibrated)
MATCH (run:Run) WHERE run.id IN $runs
RETURN run.id AS run, run.calibration AS calibration
ORDER BY run
