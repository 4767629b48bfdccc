-- depends: 0013_referral_still_meets
-- The length of period a target is for, in months, where the figure grows with the period
-- (a count, or a rate per 1,000 staff). Objectives set before hold none: set them again.
ALTER TABLE reporting.objectives ADD COLUMN months integer CHECK (months BETWEEN 1 AND 120);
