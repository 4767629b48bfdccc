-- depends: 0020_incident_reported_at
-- The criteria each standing prompt was sent under. `criteria` follows the record; a prompt
-- stands on what it was sent under, even after the criteria are narrowed and the record
-- amended in between. Claims kept before this have none, and read `criteria` instead.
ALTER TABLE reporting.police_referrals ADD COLUMN prompted_under text[];
