-- depends: 0014_objective_months
-- A referral prompt is now retracted when its incident is withdrawn or amended out of the
-- criteria, and prompted anew if amended back within them. `prompted`: what the last event
-- sent for the incident said (every claim made before this sent its prompt, and none was
-- ever retracted); `round`: how many prompts went out. `meets` now also reads false for a
-- withdrawn incident, so a claim whose record calls for no referral while its prompt stands
-- (prompted and not meets) is one the service still has to retract: it does so on start.
ALTER TABLE reporting.police_referrals ADD COLUMN prompted boolean NOT NULL DEFAULT true;
ALTER TABLE reporting.police_referrals ADD COLUMN round integer NOT NULL DEFAULT 1;
UPDATE reporting.police_referrals r SET meets = false
  FROM reporting.incidents i WHERE i.incident_id = r.incident_id AND i.withdrawn AND r.meets;
-- The claims to settle, found without reading every claim.
CREATE INDEX police_referrals_unsettled ON reporting.police_referrals (incident_id) WHERE prompted <> meets;
