// purpose: Set the calibration of a run's source features (`atlas trace calibrate`); a feature keeps the last run's.
// param rows: map[] — {uid, calibration_run, calibration_fdr, calibration_observed_edges,
//   calibration_expected_null_edges, calibration_surviving_edges} (loaders.runs.calibration_rows)
// returns: nothing
UNWIND $rows AS row
MATCH (feature:Feature {uid: row.uid})
SET feature += row
