-- depends: 0019_projection_settings
-- When intake accepted each report, so that footage of an incident reported late is held for
-- the whole period from its report: a referral or card may still need it. Rows kept before
-- this have none, and their period runs from the incident as before, until a rebuild
-- replays the reports and fills it in.
ALTER TABLE reporting.incidents ADD COLUMN reported_at timestamptz;
