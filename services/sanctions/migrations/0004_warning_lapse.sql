-- depends: 0003_lean_writes
-- A warning lapses when its incident leaves the policy's window. The scheduler finds the
-- warnings due by the incident's time, kept beside the card; the window is the policy's,
-- given at query time, so a changed window applies to warnings already issued.
ALTER TABLE sanctions.cards ADD COLUMN occurred_at timestamptz;
UPDATE sanctions.cards c SET occurred_at = (i ->> 'occurred_at')::timestamptz
  FROM sanctions.subjects s, json_array_elements(s.state -> 'incidents') AS i
 WHERE s.subject_id = c.subject_id AND (i ->> 'incident_id')::uuid = c.incident_id;
CREATE INDEX cards_issued_idx ON sanctions.cards (occurred_at) WHERE status = 'issued';
