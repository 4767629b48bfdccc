-- depends: 0016_board_revisions
-- Withdrawn incidents, few beside the rest: how the referral settling round finds a claim
-- whose withdrawal a replica of the version before 0015 applied (during a rolling upgrade),
-- leaving `meets` as it was, without reading every claim.
CREATE INDEX incidents_withdrawn ON reporting.incidents (incident_id) WHERE withdrawn;
