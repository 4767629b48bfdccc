-- depends: 0006_lean_writes
-- Report fingerprints are now keyed (k<version>:<hmac>); intake reseals the bare ones stored
-- before at start. This index holds only those still bare, so finding them is instant, and
-- it is empty once they are done.
CREATE INDEX incidents_bare_fingerprint_idx ON intake.incidents (incident_id) WHERE fingerprint NOT LIKE 'k%';
