-- depends: 0006_workforce_disability
-- When the trust reported an incident to HSE under RIDDOR: the board counts reportable
-- incidents reported within the 15 days the regulations allow.
ALTER TABLE reporting.incidents ADD COLUMN riddor_reported_at timestamptz;
