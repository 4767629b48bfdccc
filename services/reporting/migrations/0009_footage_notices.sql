-- depends: 0008_footage_unplanned
-- The footage notices published, each once per incident: `hold` (keep as evidence) and
-- `release` (past its period, nothing rests on it).
CREATE TABLE reporting.footage_notices (
    incident_id uuid NOT NULL,
    notice      text NOT NULL,
    event_id    text NOT NULL,
    noticed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (incident_id, notice)
);
