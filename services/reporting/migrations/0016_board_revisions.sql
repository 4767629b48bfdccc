-- depends: 0015_referral_retractions
-- A closed month's figures are published again when they change (late reports, amendments,
-- withdrawals, a workforce load): `revision` counts what went out, and `digest` is of the
-- figures last published. A month published before this has none: its next round records
-- the figures as they stand then, and publishes only later changes.
ALTER TABLE reporting.published_months ADD COLUMN revision integer NOT NULL DEFAULT 1;
ALTER TABLE reporting.published_months ADD COLUMN digest text;
