// purpose: The elementId of each feature a run's edges touch, looked up once per load by uid.
// param uids: str[] — feature uids
// returns: uid, id
UNWIND $uids AS uid
MATCH (feature:Feature {uid: uid})
RETURN uid, elementId(feature) AS id
