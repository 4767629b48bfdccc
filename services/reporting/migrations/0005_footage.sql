-- depends: 0004_outbox_index
-- Body-worn camera footage: the worklist of what is evidence and what may be deleted.

-- Who recorded that an incident's footage was deleted, and when. Kept by people, not
-- projected from the topics, so a rebuild leaves it as it is.
CREATE TABLE reporting.footage_deletions (
    incident_id uuid PRIMARY KEY,
    deleted_at  timestamptz NOT NULL,
    recorded_by text NOT NULL
);

-- The worklist walks incidents with footage oldest first.
CREATE INDEX incidents_footage_idx ON reporting.incidents (occurred_at, incident_id) WHERE body_worn_camera;
-- Whether a card rests on an incident, and whether that card was undone: small partial
-- indexes, so that the decisions written for every incident pay little for them.
CREATE INDEX decisions_card_incident_idx ON reporting.decisions (incident_id)
    WHERE kind IN ('yellow_card_1', 'yellow_card_2', 'red_card_proposed', 'evidence_attached');
CREATE INDEX decisions_undone_idx ON reporting.decisions (sanction_id) WHERE kind IN ('rescinded', 'red_card_rejected');
